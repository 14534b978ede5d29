/* record: FastCGI stdout records written with writev, read back and parsed
 * on the other end of a socket pair. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "record.h"
#include "testutil.h"

#include <fastcgi.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Room for everything a roundtrip test sends, records included. */
#define READ_ALL_BYTES (4u << 20)

struct reader {
	int fd;
	unsigned char *got;  /* all bytes read: READ_ALL_BYTES, from tu_alloc */
	size_t got_len;
};

/* Runs in its own thread; r->got is allocated by the test beforehand. */
static void *read_all(void *arg)
{
	struct reader *r = arg;
	ssize_t n;

	while ((n = read(r->fd, r->got + r->got_len, READ_ALL_BYTES - r->got_len)) > 0)
		r->got_len += (size_t)n;
	return NULL;
}

/* Parses records; returns the concatenated content (from tu_alloc),
 * checks each header. */
static unsigned char *contents(const unsigned char *p, size_t len, int request_id,
			       size_t *out_len, int *records)
{
	unsigned char *out = tu_alloc(len);
	size_t used = 0;

	*records = 0;
	while (len > 0) {
		struct tu_record rec;
		size_t whole = tu_record_parse(p, len, &rec);

		assert_true(whole > 0); /* no record cut short */
		assert_int_equal(rec.version, FCGI_VERSION_1);
		assert_int_equal(rec.type, FCGI_STDOUT);
		assert_int_equal(rec.request_id, request_id);
		assert_true(rec.content_len > 0 && rec.content_len <= RECORD_CONTENT_MAX);
		memcpy(out + used, rec.content, rec.content_len);
		used += rec.content_len;
		p += whole;
		len -= whole;
		(*records)++;
	}
	*out_len = used;
	return out;
}

static void check_roundtrip(const size_t *sizes, int n, int request_id, int records_expected)
{
	struct iovec pieces[RECORD_PIECES_MAX];
	unsigned char *expect, *got;
	size_t total = 0, got_len, at = 0;
	struct reader r = { 0 };
	pthread_t thread;
	int sv[2], i, records;

	for (i = 0; i < n; i++)
		total += sizes[i];
	expect = tu_alloc(total);
	for (size_t k = 0; k < total; k++)
		expect[k] = (unsigned char)(k * 7 + 3);
	for (i = 0; i < n; i++) {
		pieces[i].iov_base = expect + at;
		pieces[i].iov_len = sizes[i];
		at += sizes[i];
	}
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	r.fd = sv[1];
	r.got = tu_alloc(READ_ALL_BYTES);
	assert_int_equal(pthread_create(&thread, NULL, read_all, &r), 0);
	assert_int_equal(record_write_stdout(sv[0], request_id, pieces, n), 0);
	close(sv[0]);
	pthread_join(thread, NULL);
	close(sv[1]);
	got = contents(r.got, r.got_len, request_id, &got_len, &records);
	assert_int_equal(got_len, total);
	assert_memory_equal(got, expect, total);
	assert_int_equal(records, records_expected);
}

static void test_one_small_part(void **state)
{
	const size_t sizes[] = { 90, 16000, 30 };

	(void)state;
	check_roundtrip(sizes, 3, 1, 1);
}

static void test_part_over_one_record(void **state)
{
	/* 200 000 bytes: four records, the first three full */
	const size_t sizes[] = { 100, 199870, 30 };

	(void)state;
	check_roundtrip(sizes, 3, 258, 4);
}

static void test_more_than_one_call(void **state)
{
	/* over RECORDS_PER_CALL full records: more than one writev */
	const size_t sizes[] = { 65535 * 20 + 5 };

	(void)state;
	check_roundtrip(sizes, 1, 7, 21);
}

static void test_empty_pieces(void **state)
{
	const size_t sizes[] = { 0, 10, 0, 0, 5, 0 };

	(void)state;
	check_roundtrip(sizes, 6, 1, 1);
}

/* Sends with MSG_DONTWAIT into a small socket buffer, reading a little
 * whenever it is full: the send resumes where it stopped, and the request
 * ends with an empty stdout record and FCGI_END_REQUEST. */
static void test_resume_when_full_and_end(void **state)
{
	const size_t total = 65535 * 3 + 1000;
	unsigned char *expect = tu_alloc(total), *wire = tu_alloc(total + 4096), *got;
	struct iovec pieces[2] = { { expect, 100 }, { expect + 100, total - 100 } };
	size_t sent = 0, wire_len = 0, got_len, body;
	int sv[2], rc, records, buf = 4096, fulls = 0;
	const FCGI_EndRequestRecord *end;

	(void)state;
	for (size_t k = 0; k < total; k++)
		expect[k] = (unsigned char)(k * 13 + 1);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf)), 0);
	while ((rc = record_send(sv[0], 9, pieces, 2, 1, &sent, MSG_DONTWAIT)) == 0) {
		ssize_t n = read(sv[1], wire + wire_len, 3000);

		assert_true(n > 0);
		wire_len += (size_t)n;
		fulls++;
	}
	assert_int_equal(rc, 1);
	assert_true(fulls > 10); /* it did stop and resume */
	assert_int_equal(sent, record_wire_bytes(total, 1));
	close(sv[0]);
	for (ssize_t n; (n = read(sv[1], wire + wire_len, 65536)) > 0;)
		wire_len += (size_t)n;
	close(sv[1]);
	assert_int_equal(wire_len, sent);

	/* the end: empty FCGI_STDOUT, then FCGI_END_REQUEST, complete */
	body = wire_len - sizeof(FCGI_Header) - sizeof(FCGI_EndRequestRecord);
	end = (const FCGI_EndRequestRecord *)(wire + body + sizeof(FCGI_Header));
	assert_int_equal(wire[body + 1], FCGI_STDOUT);
	assert_int_equal(wire[body + 4] << 8 | wire[body + 5], 0);
	assert_int_equal(end->header.type, FCGI_END_REQUEST);
	assert_int_equal(end->header.requestIdB0, 9);
	assert_int_equal(end->body.protocolStatus, FCGI_REQUEST_COMPLETE);

	got = contents(wire, body, 9, &got_len, &records);
	assert_int_equal(records, 4);
	assert_int_equal(got_len, total);
	assert_memory_equal(got, expect, total);
}

/* Sends pieces (with the end records) from *sent on into a fresh socket
 * pair and reads back what went out.  Returns the byte count. */
static size_t send_from(const struct iovec *pieces, int n, size_t *sent, unsigned char *wire,
			size_t size)
{
	size_t len = 0;
	ssize_t got;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	/* well under the socket's default buffer: never blocks */
	assert_int_equal(record_send(sv[0], 5, pieces, n, 1, sent, 0), 1);
	close(sv[0]);
	while ((got = read(sv[1], wire + len, size - len)) > 0)
		len += (size_t)got;
	close(sv[1]);
	return len;
}

/* A send resumed at any byte near the end goes on at exactly that byte,
 * for content sizes where the end records start late in what would be a
 * full record (content % 65535 from 65512 to 65534). */
static void test_resume_at_every_byte_near_the_end(void **state)
{
	static const size_t sizes[] = { 65510, 65512, 65520, 65534, 65535, 65536, 131069 };
	static unsigned char data[131072], whole[140000], tail[140000];

	(void)state;
	for (size_t k = 0; k < sizeof(data); k++)
		data[k] = (unsigned char)(k * 31 + 7);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t content = sizes[i], total = record_wire_bytes(content, 1), sent = 0;
		struct iovec pieces[2] = { { data, 10 }, { data + 10, content - 10 } };

		assert_int_equal(send_from(pieces, 2, &sent, whole, sizeof(whole)), total);
		for (size_t start = total - 80; start < total; start++) {
			sent = start;
			assert_int_equal(send_from(pieces, 2, &sent, tail, sizeof(tail)),
					 total - start);
			assert_int_equal(sent, total);
			assert_memory_equal(tail, whole + start, total - start);
		}
	}
}

/* A request with no content still ends properly. */
static void test_end_only(void **state)
{
	unsigned char wire[64];
	size_t sent = 0;
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(record_send(sv[0], 1, NULL, 0, 1, &sent, MSG_DONTWAIT), 1);
	assert_int_equal(sent, 24);
	assert_int_equal(read(sv[1], wire, sizeof(wire)), 24);
	assert_int_equal(wire[1], FCGI_STDOUT);
	assert_int_equal(wire[9], FCGI_END_REQUEST);
	close(sv[0]);
	close(sv[1]);
}

static void test_peer_gone(void **state)
{
	struct iovec piece = { "x", 1 };
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	close(sv[1]);
	signal(SIGPIPE, SIG_IGN);
	assert_int_equal(record_write_stdout(sv[0], 1, &piece, 1), -1);
	close(sv[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_one_small_part, tu_release),
		cmocka_unit_test_teardown(test_part_over_one_record, tu_release),
		cmocka_unit_test_teardown(test_more_than_one_call, tu_release),
		cmocka_unit_test_teardown(test_empty_pieces, tu_release),
		cmocka_unit_test_teardown(test_resume_when_full_and_end, tu_release),
		cmocka_unit_test_teardown(test_resume_at_every_byte_near_the_end, tu_release),
		cmocka_unit_test_teardown(test_end_only, tu_release),
		cmocka_unit_test_teardown(test_peer_gone, tu_release),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
