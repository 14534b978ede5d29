/* Unit tests for fcgi/multipart.c: the exact bytes of a
 * multipart/x-mixed-replace response (README, "Wire format"). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "multipart.h"

#include <ctype.h>
#include <string.h>

/* A fixed boundary, so that the expected bytes can be spelled out. */
#define B "AbCdEfGhIjKlMnOpQrStUv01"

/* Every '\n' is preceded by '\r' and every '\r' followed by '\n'. */
static void assert_crlf_only(const char *buf, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (buf[i] == '\n' && (i == 0 || buf[i - 1] != '\r'))
			fail_msg("bare LF at offset %zu", i);
		if (buf[i] == '\r' && (i + 1 == len || buf[i + 1] != '\n'))
			fail_msg("bare CR at offset %zu", i);
	}
}

static void test_boundary_letters_and_digits(void **state)
{
	char boundary[MULTIPART_BOUNDARY_LEN + 2];
	int round;
	size_t i;

	(void)state;
	assert_int_equal(MULTIPART_BOUNDARY_LEN, 24);
	for (round = 0; round < 100; round++) {
		memset(boundary, '!', sizeof(boundary));
		multipart_make_boundary(boundary);
		assert_int_equal(strlen(boundary), MULTIPART_BOUNDARY_LEN);
		for (i = 0; i < MULTIPART_BOUNDARY_LEN; i++)
			if (!isalnum((unsigned char)boundary[i]) || (unsigned char)boundary[i] > 0x7f)
				fail_msg("boundary \"%s\": byte %zu is 0x%02x", boundary, i,
					 (unsigned char)boundary[i]);
		/* writes MULTIPART_BOUNDARY_LEN + 1 bytes, not more */
		assert_int_equal(boundary[MULTIPART_BOUNDARY_LEN + 1], '!');
	}
}

static void test_boundary_differs_between_calls(void **state)
{
	char a[MULTIPART_BOUNDARY_LEN + 1], b[MULTIPART_BOUNDARY_LEN + 1],
		c[MULTIPART_BOUNDARY_LEN + 1];

	(void)state;
	multipart_make_boundary(a);
	multipart_make_boundary(b);
	multipart_make_boundary(c);
	assert_string_not_equal(a, b);
	assert_string_not_equal(b, c);
	assert_string_not_equal(a, c);
}

#define HEAD_EXPECTED                                                                       \
	"Status: 200 OK\r\n"                                                                \
	"Content-Type: multipart/x-mixed-replace;boundary=" B "\r\n"                       \
	"Cache-Control: no-store, no-cache, must-revalidate, max-age=0\r\n"                \
	"Pragma: no-cache\r\n"                                                              \
	"X-Accel-Buffering: no\r\n"

static void test_response_head_exact(void **state)
{
	static const char expected[] = HEAD_EXPECTED "\r\n"
						     "--" B "\r\n";
	char buf[MULTIPART_HEAD_MAX];
	int n;

	(void)state;
	n = multipart_response_head(buf, sizeof(buf), B, NULL);
	assert_int_equal(n, sizeof(expected) - 1);
	assert_string_equal(buf, expected);
	assert_crlf_only(buf, (size_t)n);
}

/* The properties clients depend on, checked one by one so a failure says
 * which: boundary unquoted and last on its line, first body bytes. */
static void test_response_head_properties(void **state)
{
	char buf[MULTIPART_HEAD_MAX];
	const char *ct, *eol, *body;
	int n;

	(void)state;
	n = multipart_response_head(buf, sizeof(buf), B, NULL);
	assert_true(n > 0);
	assert_int_equal(strncmp(buf, "Status: 200 OK\r\n", 16), 0);
	ct = strstr(buf, "\r\nContent-Type: ");
	assert_non_null(ct);
	eol = strstr(ct + 2, "\r\n");
	assert_non_null(eol);
	/* ends with ";boundary=B" directly, no quotes, no later parameter */
	assert_int_equal(eol - ct - 2, strlen("Content-Type: multipart/x-mixed-replace;boundary=" B));
	assert_int_equal(strncmp(eol - strlen(";boundary=" B), ";boundary=" B,
				 strlen(";boundary=" B)),
			 0);
	assert_null(memchr(ct, '"', (size_t)(eol - ct)));
	assert_non_null(strstr(buf, "\r\nCache-Control: no-store"));
	assert_non_null(strstr(buf, "\r\nX-Accel-Buffering: no\r\n"));
	body = strstr(buf, "\r\n\r\n");
	assert_non_null(body);
	body += 4;
	assert_string_equal(body, "--" B "\r\n");
}

static void test_response_head_extra_headers(void **state)
{
	static const char expected[] = HEAD_EXPECTED "X-Stream: demo\r\n"
						     "X-Other: 2\r\n"
						     "\r\n"
						     "--" B "\r\n";
	char buf[MULTIPART_HEAD_MAX];
	int n;

	(void)state;
	n = multipart_response_head(buf, sizeof(buf), B, "X-Stream: demo\r\nX-Other: 2\r\n");
	assert_int_equal(n, sizeof(expected) - 1);
	assert_string_equal(buf, expected);
	assert_crlf_only(buf, (size_t)n);
}

static void test_response_head_overflow(void **state)
{
	static const char expected[] = HEAD_EXPECTED "\r\n"
						     "--" B "\r\n";
	const size_t len = sizeof(expected) - 1;
	char buf[MULTIPART_HEAD_MAX];

	(void)state;
	assert_int_equal(multipart_response_head(buf, 0, B, NULL), -1);
	assert_int_equal(multipart_response_head(buf, 16, B, NULL), -1);
	assert_int_equal(multipart_response_head(buf, len, B, NULL), -1);
	assert_int_equal(multipart_response_head(buf, len + 1, B, NULL), (int)len);
	assert_string_equal(buf, expected);
}

static void test_part_head_exact(void **state)
{
	static const char expected[] = "Content-Type: image/jpeg\r\n"
				       "Content-Length: 12345\r\n"
				       "X-Timestamp: 1767225600.000042\r\n"
				       "\r\n";
	char buf[MULTIPART_HEAD_MAX];
	int n;

	(void)state;
	n = multipart_part_head(buf, sizeof(buf), 12345, 1767225600000042LL);
	assert_int_equal(n, sizeof(expected) - 1);
	assert_string_equal(buf, expected);
	assert_crlf_only(buf, (size_t)n);
}

static void test_part_head_timestamp_padding(void **state)
{
	char buf[MULTIPART_HEAD_MAX];

	(void)state;
	assert_true(multipart_part_head(buf, sizeof(buf), 1, 1767225600000000LL) > 0);
	assert_non_null(strstr(buf, "\r\nX-Timestamp: 1767225600.000000\r\n"));
	assert_true(multipart_part_head(buf, sizeof(buf), 1, 1767225600999999LL) > 0);
	assert_non_null(strstr(buf, "\r\nX-Timestamp: 1767225600.999999\r\n"));
	assert_true(multipart_part_head(buf, sizeof(buf), 1, 1767225601100000LL) > 0);
	assert_non_null(strstr(buf, "\r\nX-Timestamp: 1767225601.100000\r\n"));
	assert_true(multipart_part_head(buf, sizeof(buf), 0, 7) > 0);
	assert_non_null(strstr(buf, "Content-Length: 0\r\nX-Timestamp: 0.000007\r\n"));
}

static void test_part_head_overflow(void **state)
{
	static const char expected[] = "Content-Type: image/jpeg\r\n"
				       "Content-Length: 9\r\n"
				       "X-Timestamp: 1.000002\r\n"
				       "\r\n";
	const size_t len = sizeof(expected) - 1;
	char buf[MULTIPART_HEAD_MAX];

	(void)state;
	assert_int_equal(multipart_part_head(buf, 0, 9, 1000002), -1);
	assert_int_equal(multipart_part_head(buf, len, 9, 1000002), -1);
	assert_int_equal(multipart_part_head(buf, len + 1, 9, 1000002), (int)len);
	assert_string_equal(buf, expected);
}

static void test_part_tail(void **state)
{
	char buf[MULTIPART_HEAD_MAX];
	int n;

	(void)state;
	n = multipart_part_tail(buf, sizeof(buf), B, 0);
	assert_int_equal(n, strlen("\r\n--" B "\r\n"));
	assert_string_equal(buf, "\r\n--" B "\r\n");
	assert_crlf_only(buf, (size_t)n);

	n = multipart_part_tail(buf, sizeof(buf), B, 1);
	assert_int_equal(n, strlen("\r\n--" B "--\r\n"));
	assert_string_equal(buf, "\r\n--" B "--\r\n");
	assert_crlf_only(buf, (size_t)n);
}

static void test_part_tail_overflow(void **state)
{
	const size_t len = strlen("\r\n--" B "--\r\n");
	char buf[MULTIPART_HEAD_MAX];

	(void)state;
	assert_int_equal(multipart_part_tail(buf, 0, B, 0), -1);
	assert_int_equal(multipart_part_tail(buf, len - 2, B, 0), -1);
	assert_int_equal(multipart_part_tail(buf, len - 1, B, 0), (int)(len - 2));
	assert_int_equal(multipart_part_tail(buf, len, B, 1), -1);
	assert_int_equal(multipart_part_tail(buf, len + 1, B, 1), (int)len);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_boundary_letters_and_digits),
		cmocka_unit_test(test_boundary_differs_between_calls),
		cmocka_unit_test(test_response_head_exact),
		cmocka_unit_test(test_response_head_properties),
		cmocka_unit_test(test_response_head_extra_headers),
		cmocka_unit_test(test_response_head_overflow),
		cmocka_unit_test(test_part_head_exact),
		cmocka_unit_test(test_part_head_timestamp_padding),
		cmocka_unit_test(test_part_head_overflow),
		cmocka_unit_test(test_part_tail),
		cmocka_unit_test(test_part_tail_overflow),
	};

	return cmocka_run_group_tests_name("multipart", tests, NULL, NULL);
}
