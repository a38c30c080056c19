/*
 * Playback-token check for the Majlis edge, compiled by varnishd into the edge's VCL.
 *
 * A token is `play.<space>.<member>.<expiry>.<mac>` (see majlis/signing.py): mac is the
 * first 20 bytes of HMAC-SHA256 over everything before the last dot, base64url without
 * padding. VCL puts the token and the space named by the path in two request headers;
 * majlis_check() answers in X-Majlis-Verdict: ok, malformed, forged, expired or mismatch.
 * It never touches the network or a database: one HMAC per request, about a microsecond.
 *
 * The HMAC is OpenSSL's (libcrypto, linked by the cc_command majlis edge passes), declared
 * here rather than included so that no -dev package is needed to compile the VCL.
 * MAJLIS_KEY is defined by the generated VCL just before this file.
 */
#include <stddef.h>
#include <string.h>
#include <time.h>

extern const void *EVP_sha256(void);
extern unsigned char *HMAC(const void *md, const void *key, int key_len,
    const unsigned char *data, size_t data_len, unsigned char *out, unsigned int *out_len);

#define MAJLIS_MAC_BYTES 20
#define MAJLIS_MAC_CHARS 27 /* base64url of 20 bytes, no padding */
#define MAJLIS_TOKEN_MAX 256

static const struct gethdr_s majlis_token_header = { HDR_REQ, "\017X-Majlis-Token:" };
static const struct gethdr_s majlis_space_header = { HDR_REQ, "\017X-Majlis-Space:" };
static const struct gethdr_s majlis_verdict_header = { HDR_REQ, "\021X-Majlis-Verdict:" };

static void
majlis_b64url(const unsigned char *in, size_t n, char *out)
{
	static const char abc[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t i, o = 0;
	unsigned v;

	for (i = 0; i + 2 < n; i += 3) {
		v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
		out[o++] = abc[v >> 18 & 63];
		out[o++] = abc[v >> 12 & 63];
		out[o++] = abc[v >> 6 & 63];
		out[o++] = abc[v & 63];
	}
	if (n - i == 2) {
		v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
		out[o++] = abc[v >> 18 & 63];
		out[o++] = abc[v >> 12 & 63];
		out[o++] = abc[v >> 6 & 63];
	} else if (n - i == 1) {
		v = (unsigned)in[i] << 16;
		out[o++] = abc[v >> 18 & 63];
		out[o++] = abc[v >> 12 & 63];
	}
	out[o] = '\0';
}

/* Compares all of both strings whatever they hold: the time taken says nothing of the mac. */
static int
majlis_same(const char *a, const char *b, size_t n)
{
	unsigned char diff = 0;
	size_t i;

	for (i = 0; i < n; i++)
		diff |= (unsigned char)a[i] ^ (unsigned char)b[i];
	return (diff == 0);
}

static const char *
majlis_verdict(const char *token, const char *space, double now)
{
	const char *dots[4];
	const char *p, *mac;
	unsigned char digest[32];
	unsigned int digest_len = 0;
	char expected[MAJLIS_MAC_CHARS + 1];
	size_t len, ndots = 0, space_len;
	double expiry = 0;

	if (token == NULL || space == NULL)
		return ("malformed");
	len = strlen(token);
	if (len > MAJLIS_TOKEN_MAX || strncmp(token, "play.", 5) != 0)
		return ("malformed");
	for (p = token; *p != '\0'; p++) {
		if (*p != '.')
			continue;
		if (ndots == 4)
			return ("malformed");
		dots[ndots++] = p;
	}
	if (ndots != 4)
		return ("malformed");
	mac = dots[3] + 1;
	if (strlen(mac) != MAJLIS_MAC_CHARS)
		return ("malformed");
	for (p = dots[2] + 1; p < dots[3]; p++) {
		if (*p < '0' || *p > '9' || p - dots[2] > 12)
			return ("malformed");
		expiry = expiry * 10 + (*p - '0');
	}
	if (dots[3] == dots[2] + 1)
		return ("malformed");
	if (HMAC(EVP_sha256(), majlis_key, (int)sizeof majlis_key,
	    (const unsigned char *)token, (size_t)(dots[3] - token), digest, &digest_len) == NULL)
		return ("forged");
	majlis_b64url(digest, MAJLIS_MAC_BYTES, expected);
	if (!majlis_same(mac, expected, MAJLIS_MAC_CHARS))
		return ("forged");
	if (expiry <= now)
		return ("expired");
	space_len = (size_t)(dots[1] - dots[0] - 1);
	if (strlen(space) != space_len || memcmp(space, dots[0] + 1, space_len) != 0)
		return ("mismatch");
	return ("ok");
}

static void
majlis_check(VRT_CTX)
{
	const char *verdict = majlis_verdict(
	    VRT_GetHdr(ctx, &majlis_token_header),
	    VRT_GetHdr(ctx, &majlis_space_header),
	    (double)time(NULL));

	VRT_SetHdr(ctx, &majlis_verdict_header, NULL, TOSTRAND(verdict));
}
