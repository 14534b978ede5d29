/* sign: signed, expiring links to private streams.
 *
 * A stream with a viewing secret opens only with a query that carries
 * exp=UNIX_SECONDS and sig=HEX (and optionally ip=ADDR), where
 *     sig = lower-case hex of HMAC-SHA256(secret, "NAME\nEXP")
 * or, with ip, of HMAC-SHA256(secret, "NAME\nEXP\nADDR").  NAME is the
 * stream's name, EXP the expiry in decimal, ADDR the client's address
 * exactly as the web server passes it in REMOTE_ADDR.  The HMAC is
 * OpenSSL's (libcrypto); the comparison takes the same time whatever bytes
 * differ.
 *
 * Pure functions: no I/O, no state; any thread. */
#ifndef MJPEG_SIGN_H
#define MJPEG_SIGN_H

#include <stddef.h>
#include <stdint.h>

/* A viewing secret's length, in characters (the HMAC key is its bytes). */
#define SIGN_SECRET_MIN 32
#define SIGN_SECRET_MAX 128
/* Hex digits of a signature: HMAC-SHA256 is 32 bytes. */
#define SIGN_HEX_LEN 64
/* The longest ip= value (an IPv6 address with an IPv4 tail is 45). */
#define SIGN_ADDR_MAX 45
/* The latest expiry a link may carry: 9999-12-31T23:59:59Z. */
#define SIGN_EXP_MAX 253402300799LL
/* The clock-skew grace, seconds: how long after exp a link is still
 * accepted when first presented (link_grace_s). */
#define SIGN_GRACE_S_DEFAULT 30
#define SIGN_GRACE_S_MAX 3600
/* mjpeg-fcgi sign --ttl: the default and the longest, seconds. */
#define SIGN_TTL_DEFAULT 3600
#define SIGN_TTL_MAX (366LL * 24 * 3600)
/* The longest message signed: a name, an expiry, an address, two '\n'. */
#define SIGN_MESSAGE_MAX (64 + 20 + SIGN_ADDR_MAX + 2)

/* The signed parameters of a query, as the client sent them. */
struct sign_link {
	int present;   /* any of exp, sig, ip was in the query */
	int malformed; /* one of them repeated, empty, too long or of wrong characters */
	int has_exp, has_sig, has_ip;
	int64_t exp;   /* seconds since the epoch; valid when has_exp and not malformed */
	char sig[SIGN_HEX_LEN + 1];
	char ip[SIGN_ADDR_MAX + 1]; /* percent-decoded */
};

enum sign_verdict {
	SIGN_OK,
	SIGN_INVALID,   /* missing, malformed or wrong: "invalid signature" */
	SIGN_ELSEWHERE, /* signed for another client address */
	SIGN_EXPIRED,   /* signed, but past exp + grace */
};

/* Takes one query parameter (key, and value or NULL when there was no '=')
 * into link if it is exp, sig or ip.  1: it was one of them (a bad value
 * only marks the link malformed); 0: not one of them. */
int sign_take_param(struct sign_link *link, const char *key, const char *value);

/* The message signed for stream name, expiry exp and address ip (NULL or
 * "" for none) into buf.  Its length, or -1 if it does not fit. */
int sign_message(char *buf, size_t size, const char *name, int64_t exp, const char *ip);

/* HMAC-SHA256(key, message) as lower-case hex into hex (SIGN_HEX_LEN + 1
 * bytes).  0, or -1 if libcrypto failed. */
int sign_hmac_hex(const void *key, size_t key_len, const void *message, size_t message_len,
		  char *hex) __attribute__((warn_unused_result));

/* 1 if a and b (each SIGN_HEX_LEN characters) are equal, in a time that
 * does not depend on where they differ (CRYPTO_memcmp). */
int sign_hex_equal(const char *a, const char *b);

/* Checks link for stream name under secret: the signature first, then
 * the address (remote_addr, the client's), then the expiry: valid while
 * now_sec <= exp + grace_sec.  SIGN_OK sets *expires_sec to the link's
 * exp (an open stream ends then, grace or not). */
enum sign_verdict sign_check(const struct sign_link *link, const char *name, const char *secret,
			     const char *remote_addr, int64_t now_sec, int64_t grace_sec,
			     int64_t *expires_sec) __attribute__((warn_unused_result));

/* What a client is told for a verdict: one line, nothing that helps
 * guessing ("invalid signature", "link expired", ...). */
const char *sign_reason(enum sign_verdict verdict);

/* A link: "stream/NAME?exp=EXP&sig=HEX" (with "&ip=ADDR" when ip is not
 * NULL or empty) into buf.  Its length, or -1 (too small, or libcrypto
 * failed). */
int sign_mint(char *buf, size_t size, const char *name, const char *secret, int64_t exp,
	      const char *ip) __attribute__((warn_unused_result));

/* 1 if text may be a link's address: IPv4 dotted or IPv6 characters
 * ([0-9A-Fa-f:.]), 1 to SIGN_ADDR_MAX of them. */
int sign_addr_valid(const char *text);

#endif
