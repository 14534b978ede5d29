/* Unit tests for fcgi/sign.c: HMAC-SHA256 over the RFC 4231 test cases
 * through the responder's own code path, the message format, a link's
 * query as http_parse_query takes it, tampering with every field, and the
 * edges of expiry and of the clock-skew grace. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "http.h"
#include "sign.h"

#include <stdio.h>
#include <string.h>

#define SECRET "abcdefghijklmnopqrstuvwxyz0123456789"
/* A fixed "now" for the checks: 2026-12-05, seconds since the epoch. */
#define NOW 1796451654LL
#define GRACE 30
/* HMAC-SHA256(SECRET, "cam\n1796451654"), as `openssl dgst -sha256
 * -hmac SECRET` computes it. */
#define SIG_CAM "feebf182a3205b0ec55964ac5377301e9372007ff8e8fdc6947638934698e080"
/* HMAC-SHA256(SECRET, "cam\n1796451654\n192.0.2.7"), likewise. */
#define SIG_CAM_IP "c0acca647d9bdd924100acb6f3b22a6ad4629aa7e6366b92fa325396d1099bcf"

/* ---- HMAC-SHA256: RFC 4231, section 4 -------------------------------- */

static void fill(unsigned char *buf, int byte, size_t n)
{
	memset(buf, byte, n);
}

static void assert_hmac(const void *key, size_t key_len, const void *data, size_t data_len,
			const char *expected_hex)
{
	char hex[SIGN_HEX_LEN + 1];

	assert_int_equal(sign_hmac_hex(key, key_len, data, data_len, hex), 0);
	assert_int_equal(strlen(hex), SIGN_HEX_LEN);
	/* test case 5 gives only the first 128 bits */
	assert_memory_equal(hex, expected_hex, strlen(expected_hex));
}

static void test_rfc4231_vectors(void **state)
{
	unsigned char key[131], data[50];
	size_t i;

	(void)state;
	fill(key, 0x0b, 20); /* test case 1 */
	assert_hmac(key, 20, "Hi There", 8,
		    "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
	assert_hmac("Jefe", 4, "what do ya want for nothing?", 28, /* 2 */
		    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	fill(key, 0xaa, 20); /* 3 */
	fill(data, 0xdd, 50);
	assert_hmac(key, 20, data, 50,
		    "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
	for (i = 0; i < 25; i++) /* 4 */
		key[i] = (unsigned char)(i + 1);
	fill(data, 0xcd, 50);
	assert_hmac(key, 25, data, 50,
		    "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
	fill(key, 0x0c, 20); /* 5: truncated to 128 bits */
	assert_hmac(key, 20, "Test With Truncation", 20, "a3b6167473100ee06e0c796c2955552b");
	fill(key, 0xaa, 131); /* 6: a key longer than the block */
	assert_hmac(key, 131, "Test Using Larger Than Block-Size Key - Hash Key First", 54,
		    "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
	assert_hmac(key, 131, /* 7 */
		    "This is a test using a larger than block-size key and a larger than "
		    "block-size data. The key needs to be hashed before being used by the "
		    "HMAC algorithm.",
		    152, "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

/* ---- the message and the link ---------------------------------------- */

static void test_message_format(void **state)
{
	char buf[SIGN_MESSAGE_MAX + 1];

	(void)state;
	assert_int_equal(sign_message(buf, sizeof(buf), "cam", NOW, NULL), 14);
	assert_string_equal(buf, "cam\n1796451654");
	assert_int_equal(sign_message(buf, sizeof(buf), "cam", NOW, ""), 14);
	assert_string_equal(buf, "cam\n1796451654");
	assert_int_equal(sign_message(buf, sizeof(buf), "cam", NOW, "192.0.2.7"), 24);
	assert_string_equal(buf, "cam\n1796451654\n192.0.2.7");
	assert_int_equal(sign_message(buf, 14, "cam", NOW, NULL), -1); /* no room for the NUL */
}

static void test_mint(void **state)
{
	char link[256];

	(void)state;
	assert_int_equal(sign_mint(link, sizeof(link), "cam", SECRET, NOW, NULL),
			 (int)strlen("stream/cam?exp=1796451654&sig=" SIG_CAM));
	assert_string_equal(link, "stream/cam?exp=1796451654&sig=" SIG_CAM);
	assert_true(sign_mint(link, sizeof(link), "cam", SECRET, NOW, "192.0.2.7") > 0);
	assert_string_equal(link, "stream/cam?exp=1796451654&sig=" SIG_CAM_IP "&ip=192.0.2.7");
	assert_int_equal(sign_mint(link, 40, "cam", SECRET, NOW, NULL), -1);
}

/* The verdict on a query string for stream name, through
 * http_parse_query as a request goes (stream and snapshot alike). */
static enum sign_verdict verdict(const char *query_string, const char *name, const char *secret,
				 const char *remote_addr, int64_t now, int64_t grace)
{
	struct query q[2];
	char why[160];
	int64_t expires[2] = { -1, -1 };
	enum sign_verdict v[2];
	int k;

	for (k = 0; k < 2; k++) {
		if (http_parse_query(query_string, k ? ROUTE_SNAPSHOT : ROUTE_STREAM, &q[k], why,
				     sizeof(why)) < 0)
			fail_msg("query '%s' refused: %s", query_string, why);
		v[k] = sign_check(&q[k].link, name, secret, remote_addr, now, grace, &expires[k]);
	}
	assert_int_equal(v[0], v[1]);
	if (v[0] == SIGN_OK)
		assert_int_equal(expires[0], q[0].link.exp);
	else
		assert_int_equal(expires[0], -1); /* untouched */
	return v[0];
}

static void test_valid_link(void **state)
{
	(void)state;
	assert_int_equal(verdict("exp=1796451654&sig=" SIG_CAM, "cam", SECRET, "127.0.0.1", NOW,
				 GRACE),
			 SIGN_OK);
	/* order, and the unsigned parameters, do not matter */
	assert_int_equal(verdict("sig=" SIG_CAM "&_=17&exp=1796451654", "cam", SECRET, "127.0.0.1",
				 NOW, GRACE),
			 SIGN_OK);
	assert_int_equal(verdict("exp=1796451654&sig=" SIG_CAM_IP "&ip=192.0.2.7", "cam", SECRET,
				 "192.0.2.7", NOW, GRACE),
			 SIGN_OK);
}

static void test_tampering(void **state)
{
	char query[256], sig[SIGN_HEX_LEN + 1];
	size_t i;

	(void)state;
	/* another stream, another secret */
	assert_int_equal(verdict("exp=1796451654&sig=" SIG_CAM, "cam2", SECRET, NULL, NOW, GRACE),
			 SIGN_INVALID);
	assert_int_equal(verdict("exp=1796451654&sig=" SIG_CAM, "cam", SECRET "x", NULL, NOW,
				 GRACE),
			 SIGN_INVALID);
	/* the expiry moved either way */
	assert_int_equal(verdict("exp=1796451655&sig=" SIG_CAM, "cam", SECRET, NULL, NOW, GRACE),
			 SIGN_INVALID);
	assert_int_equal(verdict("exp=1796451653&sig=" SIG_CAM, "cam", SECRET, NULL, NOW, GRACE),
			 SIGN_INVALID);
	/* every digit of the signature */
	for (i = 0; i < SIGN_HEX_LEN; i++) {
		memcpy(sig, SIG_CAM, sizeof(sig));
		sig[i] = sig[i] == '0' ? '1' : '0';
		snprintf(query, sizeof(query), "exp=1796451654&sig=%s", sig);
		assert_int_equal(verdict(query, "cam", SECRET, NULL, NOW, GRACE), SIGN_INVALID);
	}
	/* the address: dropped, changed, added */
	assert_int_equal(verdict("exp=1796451654&sig=" SIG_CAM_IP, "cam", SECRET, "192.0.2.7", NOW,
				 GRACE),
			 SIGN_INVALID);
	assert_int_equal(verdict("exp=1796451654&sig=" SIG_CAM_IP "&ip=192.0.2.8", "cam", SECRET,
				 "192.0.2.8", NOW, GRACE),
			 SIGN_INVALID);
	assert_int_equal(verdict("exp=1796451654&sig=" SIG_CAM "&ip=192.0.2.7", "cam", SECRET,
				 "192.0.2.7", NOW, GRACE),
			 SIGN_INVALID);
	/* signed for one address, presented from another */
	assert_int_equal(verdict("exp=1796451654&sig=" SIG_CAM_IP "&ip=192.0.2.7", "cam", SECRET,
				 "192.0.2.8", NOW, GRACE),
			 SIGN_ELSEWHERE);
	assert_int_equal(verdict("exp=1796451654&sig=" SIG_CAM_IP "&ip=192.0.2.7", "cam", SECRET,
				 NULL, NOW, GRACE),
			 SIGN_ELSEWHERE);
}

static void test_malformed(void **state)
{
	static const char *const bad[] = {
		"",
		"exp=1796451654",
		"sig=" SIG_CAM,
		"exp=1796451654&sig=",
		"exp=1796451654&sig",
		"exp=&sig=" SIG_CAM,
		"exp&sig=" SIG_CAM,
		"exp=+1796451654&sig=" SIG_CAM,
		"exp=1796451654x&sig=" SIG_CAM,
		"exp=-1&sig=" SIG_CAM,
		"exp=253402300800&sig=" SIG_CAM, /* past SIGN_EXP_MAX */
		"exp=99999999999999999999999&sig=" SIG_CAM,
		"exp=1796451654&sig=" SIG_CAM "0",
		"exp=1796451654&sig=" SIG_CAM "&sig=" SIG_CAM,
		"exp=1796451654&exp=1796451654&sig=" SIG_CAM,
		"exp=1796451654&sig=FEEBF182A3205B0EC55964AC5377301E9372007FF8E8FDC6947638934698E080",
		"exp=1796451654&sig=" SIG_CAM "&ip=",
		"exp=1796451654&sig=" SIG_CAM "&ip=host.example",
		"exp=1796451654&sig=" SIG_CAM "&ip=%3",
		"exp=1796451654&sig=" SIG_CAM "&ip=%00",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		enum sign_verdict v = verdict(bad[i], "cam", SECRET, "127.0.0.1", NOW, GRACE);

		if (v != SIGN_INVALID)
			fail_msg("'%s': verdict %d, not SIGN_INVALID", bad[i], v);
	}
	/* a one-character-short signature with a valid prefix */
	assert_int_equal(verdict("exp=1796451654&sig=feebf182a3205b0ec55964ac5377301e9372007ff8e8f"
				 "dc6947638934698e08",
				 "cam", SECRET, NULL, NOW, GRACE),
			 SIGN_INVALID);
}

static void test_ip_percent_encoded(void **state)
{
	char link[256], query[256];

	(void)state;
	assert_true(sign_mint(link, sizeof(link), "cam", SECRET, NOW, "::1") > 0);
	/* as Python's urlencode or JavaScript's URLSearchParams send it */
	snprintf(query, sizeof(query), "%s", strchr(link, '?') + 1);
	assert_non_null(strstr(query, "&ip=::1"));
	strcpy(strstr(query, "&ip=") + 4, "%3A%3a1");
	assert_int_equal(verdict(query, "cam", SECRET, "::1", NOW, GRACE), SIGN_OK);
	assert_int_equal(verdict(query, "cam", SECRET, "127.0.0.1", NOW, GRACE), SIGN_ELSEWHERE);
}

/* ---- expiry ---------------------------------------------------------- */

static enum sign_verdict at(int64_t exp, int64_t now, int64_t grace)
{
	char link[256];

	assert_true(sign_mint(link, sizeof(link), "cam", SECRET, exp, NULL) > 0);
	return verdict(strchr(link, '?') + 1, "cam", SECRET, NULL, now, grace);
}

static void test_expiry_edges(void **state)
{
	(void)state;
	assert_int_equal(at(NOW + GRACE, NOW, GRACE), SIGN_OK);
	assert_int_equal(at(NOW + 1, NOW, GRACE), SIGN_OK);
	assert_int_equal(at(NOW, NOW, GRACE), SIGN_OK);
	/* within the grace: a clock a little behind ours */
	assert_int_equal(at(NOW - 1, NOW, GRACE), SIGN_OK);
	assert_int_equal(at(NOW - GRACE, NOW, GRACE), SIGN_OK);
	assert_int_equal(at(NOW - GRACE - 1, NOW, GRACE), SIGN_EXPIRED);
	/* no grace: valid through the second of exp, not after */
	assert_int_equal(at(NOW, NOW, 0), SIGN_OK);
	assert_int_equal(at(NOW - 1, NOW, 0), SIGN_EXPIRED);
	assert_int_equal(at(0, NOW, GRACE), SIGN_EXPIRED);
	assert_int_equal(at(SIGN_EXP_MAX, NOW, GRACE), SIGN_OK);
	/* an expired link with a wrong signature says only that */
	assert_int_equal(verdict("exp=1&sig=" SIG_CAM, "cam", SECRET, NULL, NOW, GRACE),
			 SIGN_INVALID);
}

/* ---- the compare and the answers ------------------------------------- */

static void test_hex_equal(void **state)
{
	char a[SIGN_HEX_LEN + 1], b[SIGN_HEX_LEN + 1];
	size_t i;

	(void)state;
	memcpy(a, SIG_CAM, sizeof(a));
	memcpy(b, SIG_CAM, sizeof(b));
	assert_true(sign_hex_equal(a, b));
	/* a difference anywhere counts, the last byte as much as the first
	 * (CRYPTO_memcmp reads all SIGN_HEX_LEN bytes whatever they hold) */
	for (i = 0; i < SIGN_HEX_LEN; i++) {
		b[i] ^= 1;
		assert_false(sign_hex_equal(a, b));
		b[i] ^= 1;
	}
}

static void test_reasons(void **state)
{
	(void)state;
	assert_string_equal(sign_reason(SIGN_INVALID), "invalid signature");
	assert_string_equal(sign_reason(SIGN_EXPIRED), "link expired");
	assert_string_equal(sign_reason(SIGN_ELSEWHERE), "link not valid from this address");
}

static void test_addr_valid(void **state)
{
	(void)state;
	assert_true(sign_addr_valid("127.0.0.1"));
	assert_true(sign_addr_valid("::1"));
	assert_true(sign_addr_valid("2001:db8::ffff:192.0.2.7"));
	assert_false(sign_addr_valid(""));
	assert_false(sign_addr_valid("example.org"));
	assert_false(sign_addr_valid("1.2.3.4 "));
	assert_false(sign_addr_valid("0000000000000000000000000000000000000000000000"));
}

/* A stream's own parameters go with a link as usual; other routes leave
 * exp, sig and ip alone: an unknown parameter there. */
static void test_other_routes_refuse(void **state)
{
	struct query q;
	char why[160];
	int64_t expires = 0;

	(void)state;
	assert_int_equal(http_parse_query("frames=5&sig=" SIG_CAM "&exp=1796451654&fps=2",
					  ROUTE_STREAM, &q, why, sizeof(why)),
			 0);
	assert_int_equal(q.frames, 5);
	assert_int_equal(sign_check(&q.link, "cam", SECRET, NULL, NOW, GRACE, &expires), SIGN_OK);
	assert_int_equal(expires, NOW);
	assert_int_equal(http_parse_query("exp=1&sig=" SIG_CAM, ROUTE_INGEST, &q, why, sizeof(why)),
			 -1);
	assert_string_equal(why, "unknown parameter 'exp'");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc4231_vectors), cmocka_unit_test(test_message_format),
		cmocka_unit_test(test_mint),		cmocka_unit_test(test_valid_link),
		cmocka_unit_test(test_tampering),	cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_ip_percent_encoded), cmocka_unit_test(test_expiry_edges),
		cmocka_unit_test(test_hex_equal),	cmocka_unit_test(test_reasons),
		cmocka_unit_test(test_addr_valid),	cmocka_unit_test(test_other_routes_refuse),
	};

	return cmocka_run_group_tests_name("sign", tests, NULL, NULL);
}
