#include "sign.h"

#include "parse.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

/* The longest HMAC key handed to libcrypto (secrets are at most
 * SIGN_SECRET_MAX; the RFC 4231 vectors go up to 131 bytes). */
#define SIGN_KEY_MAX 1024

/* The value of a hex digit, or -1. */
static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int sign_addr_valid(const char *text)
{
	size_t n;

	for (n = 0; text[n]; n++)
		if (hex_value(text[n]) < 0 && text[n] != ':' && text[n] != '.')
			return 0;
	return n >= 1 && n <= SIGN_ADDR_MAX;
}

/* ip= as sent, percent-decoded into out (URL encoders send IPv6 colons
 * as %3A).  0, or -1 when it is not an address. */
static int take_addr(const char *value, char *out, size_t size)
{
	size_t n = 0;

	for (; *value; value++) {
		int c = (unsigned char)*value;

		if (c == '%') {
			int hi = hex_value(value[1]), lo = hi < 0 ? -1 : hex_value(value[2]);

			if (lo < 0)
				return -1;
			c = hi << 4 | lo;
			value += 2;
		}
		if (n + 1 >= size)
			return -1;
		out[n++] = (char)c;
	}
	out[n] = '\0';
	return sign_addr_valid(out) ? 0 : -1;
}

int sign_take_param(struct sign_link *link, const char *key, const char *value)
{
	long n;

	if (strcmp(key, "exp") == 0) {
		if (link->has_exp || parse_long(value, 0, (long)SIGN_EXP_MAX, &n) < 0)
			link->malformed = 1;
		else
			link->exp = n;
		link->has_exp = 1;
	} else if (strcmp(key, "sig") == 0) {
		if (link->has_sig || !value || strlen(value) != SIGN_HEX_LEN)
			link->malformed = 1;
		else
			memcpy(link->sig, value, SIGN_HEX_LEN + 1);
		link->has_sig = 1;
	} else if (strcmp(key, "ip") == 0) {
		if (link->has_ip || !value || take_addr(value, link->ip, sizeof(link->ip)) < 0)
			link->malformed = 1;
		link->has_ip = 1;
	} else {
		return 0;
	}
	link->present = 1;
	return 1;
}

int sign_message(char *buf, size_t size, const char *name, int64_t exp, const char *ip)
{
	int n;

	if (ip && *ip)
		n = snprintf(buf, size, "%s\n%lld\n%s", name, (long long)exp, ip);
	else
		n = snprintf(buf, size, "%s\n%lld", name, (long long)exp);
	if (n < 0 || (size_t)n >= size)
		return -1;
	return n;
}

int sign_hmac_hex(const void *key, size_t key_len, const void *message, size_t message_len,
		  char *hex)
{
	static const char digits[] = "0123456789abcdef";
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0, i;

	if (key_len > SIGN_KEY_MAX ||
	    !HMAC(EVP_sha256(), key, (int)key_len, message, message_len, mac, &mac_len) ||
	    mac_len * 2 != SIGN_HEX_LEN)
		return -1;
	for (i = 0; i < mac_len; i++) {
		hex[2 * i] = digits[mac[i] >> 4];
		hex[2 * i + 1] = digits[mac[i] & 0xf];
	}
	hex[SIGN_HEX_LEN] = '\0';
	return 0;
}

int sign_hex_equal(const char *a, const char *b)
{
	return CRYPTO_memcmp(a, b, SIGN_HEX_LEN) == 0;
}

/* 1 if sig is SIGN_HEX_LEN lower-case hex digits.  Looked at whole,
 * whatever it holds (it is the client's, no secret, but nothing here
 * should answer sooner for one byte than another). */
static int lower_hex(const char *sig)
{
	int bad = 0;
	size_t i;

	for (i = 0; i < SIGN_HEX_LEN; i++)
		bad |= !((sig[i] >= '0' && sig[i] <= '9') || (sig[i] >= 'a' && sig[i] <= 'f'));
	return !bad && sig[SIGN_HEX_LEN] == '\0';
}

enum sign_verdict sign_check(const struct sign_link *link, const char *name, const char *secret,
			     const char *remote_addr, int64_t now_sec, int64_t grace_sec,
			     int64_t *expires_sec)
{
	char message[SIGN_MESSAGE_MAX + 1], expected[SIGN_HEX_LEN + 1];
	int len;

	if (link->malformed || !link->has_exp || !link->has_sig || !lower_hex(link->sig))
		return SIGN_INVALID;
	len = sign_message(message, sizeof(message), name, link->exp,
			   link->has_ip ? link->ip : NULL);
	if (len < 0 || sign_hmac_hex(secret, strlen(secret), message, (size_t)len, expected) < 0)
		return SIGN_INVALID;
	if (!sign_hex_equal(expected, link->sig))
		return SIGN_INVALID;
	if (link->has_ip && (!remote_addr || strcmp(remote_addr, link->ip) != 0))
		return SIGN_ELSEWHERE;
	/* exp is at most SIGN_EXP_MAX and grace small: no overflow */
	if (now_sec > link->exp + grace_sec)
		return SIGN_EXPIRED;
	*expires_sec = link->exp;
	return SIGN_OK;
}

const char *sign_reason(enum sign_verdict verdict)
{
	switch (verdict) {
	case SIGN_OK:
		return "ok";
	case SIGN_INVALID:
		break;
	case SIGN_ELSEWHERE:
		return "link not valid from this address";
	case SIGN_EXPIRED:
		return "link expired";
	}
	return "invalid signature";
}

int sign_mint(char *buf, size_t size, const char *name, const char *secret, int64_t exp,
	      const char *ip)
{
	char message[SIGN_MESSAGE_MAX + 1], sig[SIGN_HEX_LEN + 1];
	int len = sign_message(message, sizeof(message), name, exp, ip);

	if (len < 0 || sign_hmac_hex(secret, strlen(secret), message, (size_t)len, sig) < 0)
		return -1;
	if (ip && *ip)
		len = snprintf(buf, size, "stream/%s?exp=%lld&sig=%s&ip=%s", name, (long long)exp,
			       sig, ip);
	else
		len = snprintf(buf, size, "stream/%s?exp=%lld&sig=%s", name, (long long)exp, sig);
	if (len < 0 || (size_t)len >= size)
		return -1;
	return len;
}
