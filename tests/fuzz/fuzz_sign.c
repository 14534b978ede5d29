/* Fuzzes a signed link's way in: the input as a query string through
 * http_parse_query (stream and snapshot routes) into sign_check, under a
 * fixed secret, stream, client address and clock.  Whatever the input, a
 * link is accepted only when it is exactly what sign_mint makes for its
 * own exp and ip, from the client's address, within exp + grace; and a
 * link minted from the input's own bytes (as exp and ip) is accepted, and
 * refused once any byte of its signature changes.  A broken invariant
 * traps (__builtin_trap), which libFuzzer reports as a crash. */
#include "fuzz.h"
#include "http.h"
#include "sign.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET "0123456789abcdef0123456789abcdef-fuzz"
#define NAME "cam"
#define CLIENT "192.0.2.7"
#define NOW 1796451654LL
#define GRACE 30
#define WHY_BYTES 160

static void check_query(const char *text, enum route_kind kind)
{
	struct query q;
	char why[WHY_BYTES], link[512];
	int64_t expires = -1;
	enum sign_verdict v;

	if (http_parse_query(text, kind, &q, why, sizeof(why)) < 0)
		return;
	CHECK(memchr(q.link.sig, '\0', sizeof(q.link.sig)) != NULL);
	CHECK(memchr(q.link.ip, '\0', sizeof(q.link.ip)) != NULL);
	v = sign_check(&q.link, NAME, SECRET, CLIENT, NOW, GRACE, &expires);
	CHECK(v == SIGN_OK || v == SIGN_INVALID || v == SIGN_ELSEWHERE || v == SIGN_EXPIRED);
	CHECK(strlen(sign_reason(v)) > 0);
	if (v != SIGN_OK) {
		CHECK(expires == -1);
		return;
	}
	/* accepted: a well-formed link, from here, in time, with the
	 * signature sign_mint gives */
	CHECK(q.link.present && !q.link.malformed && q.link.has_exp && q.link.has_sig);
	CHECK(expires == q.link.exp && NOW <= q.link.exp + GRACE);
	CHECK(!q.link.has_ip || strcmp(q.link.ip, CLIENT) == 0);
	CHECK(sign_mint(link, sizeof(link), NAME, SECRET, q.link.exp,
			q.link.has_ip ? q.link.ip : NULL) > 0);
	CHECK(strstr(link, q.link.sig) != NULL);
	/* never for another stream */
	CHECK(sign_check(&q.link, NAME "2", SECRET, CLIENT, NOW, GRACE, &expires) == SIGN_INVALID);
}

/* A link minted for an expiry taken from the input verifies, and one
 * changed signature digit (chosen by the input) makes it invalid. */
static void check_round_trip(const uint8_t *data, size_t size)
{
	struct query q;
	char link[512], why[WHY_BYTES];
	uint64_t raw = 0;
	int64_t exp, expires = 0;
	size_t i;
	char *sig;

	for (i = 0; i < size && i < 8; i++)
		raw = raw << 8 | data[i];
	exp = NOW + (int64_t)(raw % (2 * 86400)) - GRACE;
	CHECK(sign_mint(link, sizeof(link), NAME, SECRET, exp, size % 2 ? CLIENT : NULL) > 0);
	CHECK(http_parse_query(strchr(link, '?') + 1, ROUTE_STREAM, &q, why, sizeof(why)) == 0);
	CHECK(sign_check(&q.link, NAME, SECRET, CLIENT, NOW, GRACE, &expires) == SIGN_OK);
	CHECK(expires == exp);
	sig = strstr(link, "sig=") + 4;
	i = size ? data[size - 1] % SIGN_HEX_LEN : 0;
	sig[i] = sig[i] == 'a' ? 'b' : 'a';
	CHECK(http_parse_query(strchr(link, '?') + 1, ROUTE_STREAM, &q, why, sizeof(why)) == 0);
	CHECK(sign_check(&q.link, NAME, SECRET, CLIENT, NOW, GRACE, &expires) == SIGN_INVALID);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_string("", data, size);

	if (!text)
		return 0;
	check_query(text, ROUTE_STREAM);
	check_query(text, ROUTE_SNAPSHOT);
	check_round_trip(data, size);
	free(text);
	return 0;
}
