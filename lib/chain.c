/* The chain hashes one short record at a time (a few hundred bytes), a
 * million times for a million events. Through EVP each record costs a
 * context reset, a free, a cleanse and provider dispatch (8% of es-verify),
 * and the first EVP_MD_fetch loads the provider machinery (about a
 * millisecond of every es-append). OpenSSL's SHA256_* functions hash with
 * the same code (SHA-NI where the CPU has it) without either cost; OpenSSL
 * 3 marks them deprecated but ships them. A libcrypto built without the
 * deprecated API (OPENSSL_NO_DEPRECATED_3_0) gets the EVP path, and so does
 * a build with ES_CHAIN_EVP defined (tests/unit compares the two). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "chain.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(OPENSSL_NO_DEPRECATED_3_0) && !defined(ES_CHAIN_EVP)
#define ES_CHAIN_EVP 1
#endif

struct es_chain {
#ifdef ES_CHAIN_EVP
	EVP_MD *md;
	EVP_MD_CTX *ctx;
#else
	int unused;
#endif
};

struct es_chain *es_chain_new(void)
{
	struct es_chain *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
#ifdef ES_CHAIN_EVP
	/* Fetch the digest once: EVP_get_digestbyname per call costs a lock. */
	c->md = EVP_MD_fetch(NULL, "SHA256", NULL);
	c->ctx = EVP_MD_CTX_new();
	if (!c->md || !c->ctx) {
		es_chain_free(c);
		return NULL;
	}
#endif
	return c;
}

void es_chain_free(struct es_chain *c)
{
	if (!c)
		return;
#ifdef ES_CHAIN_EVP
	EVP_MD_CTX_free(c->ctx);
	EVP_MD_free(c->md);
#endif
	free(c);
}

/* Two hex digits per byte from one table: half the work of a nibble at a
 * time, and es-verify does it for every record. */
static const char hex2[513] =
	"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	"202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
	"404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
	"606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
	"808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
	"a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
	"c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
	"e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

static void to_hex(const unsigned char *d, unsigned n, char *out)
{
	for (unsigned i = 0; i < n; i++)
		memcpy(out + 2 * i, hex2 + 2 * d[i], 2);
	out[2 * n] = '\0';
}

int es_chain_hash(struct es_chain *c, const char prev[ES_HASH_HEX],
		  const char *bytes, size_t len, char out[ES_HASH_HEX + 1])
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned n = 0;

#ifdef ES_CHAIN_EVP
	if (!EVP_DigestInit_ex(c->ctx, c->md, NULL) ||
	    !EVP_DigestUpdate(c->ctx, prev, ES_HASH_HEX) ||
	    !EVP_DigestUpdate(c->ctx, bytes, len) ||
	    !EVP_DigestFinal_ex(c->ctx, d, &n))
		return -1;
#else
	SHA256_CTX x;

	(void)c;
	if (!SHA256_Init(&x) || !SHA256_Update(&x, prev, ES_HASH_HEX) ||
	    !SHA256_Update(&x, bytes, len) || !SHA256_Final(d, &x))
		return -1;
	n = SHA256_DIGEST_LENGTH;
#endif
	to_hex(d, n, out);
	return 0;
}

int es_chain_check(struct es_chain *c, const char prev[ES_HASH_HEX], const char *bytes,
		   size_t len, const char expect[ES_HASH_HEX])
{
	char h[ES_HASH_HEX + 1];

	if (es_chain_hash(c, prev, bytes, len, h))
		return -1;
	return memcmp(h, expect, ES_HASH_HEX) == 0;
}

int es_sha256_hex(const void *data, size_t len, char out[ES_HASH_HEX + 1])
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned n = 0;

#ifdef ES_CHAIN_EVP
	if (!EVP_Digest(data, len, d, &n, EVP_sha256(), NULL))
		return -1;
#else
	/* not SHA256(): in OpenSSL 3 it goes through EVP_Q_digest */
	SHA256_CTX x;

	if (!SHA256_Init(&x) || !SHA256_Update(&x, data, len) || !SHA256_Final(d, &x))
		return -1;
	n = SHA256_DIGEST_LENGTH;
#endif
	to_hex(d, n, out);
	return 0;
}

struct es_sha256 {
#ifdef ES_CHAIN_EVP
	EVP_MD_CTX *ctx;
#else
	SHA256_CTX ctx;
#endif
	int failed;
};

struct es_sha256 *es_sha256_begin(void)
{
	struct es_sha256 *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
#ifdef ES_CHAIN_EVP
	h->ctx = EVP_MD_CTX_new();
	if (!h->ctx || !EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL)) {
		es_sha256_free(h);
		return NULL;
	}
#else
	h->failed = !SHA256_Init(&h->ctx);
#endif
	return h;
}

void es_sha256_add(struct es_sha256 *h, const void *data, size_t len)
{
#ifdef ES_CHAIN_EVP
	h->failed |= !EVP_DigestUpdate(h->ctx, data, len);
#else
	h->failed |= !SHA256_Update(&h->ctx, data, len);
#endif
}

int es_sha256_end(struct es_sha256 *h, char out[ES_HASH_HEX + 1])
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned n = 0;

#ifdef ES_CHAIN_EVP
	h->failed |= !EVP_DigestFinal_ex(h->ctx, d, &n);
#else
	h->failed |= !SHA256_Final(d, &h->ctx);
	n = SHA256_DIGEST_LENGTH;
#endif
	if (h->failed)
		return -1;
	to_hex(d, n, out);
	return 0;
}

void es_sha256_free(struct es_sha256 *h)
{
	if (!h)
		return;
#ifdef ES_CHAIN_EVP
	EVP_MD_CTX_free(h->ctx);
#endif
	free(h);
}

int es_is_hash_hex(const char *s, size_t len)
{
	uint8_t bad = 0;

	if (len != ES_HASH_HEX)
		return 0;
	/* Without branches: hex digits are random, so a short-circuit test
	 * mispredicts on every other one (a quarter of es-verify's time).
	 * A constant count of byte-wide steps: the compiler vectorizes it. */
	for (size_t i = 0; i < ES_HASH_HEX; i++) {
		uint8_t c = (uint8_t)s[i];
		bad |= (uint8_t)((uint8_t)(c - '0') > 9) & (uint8_t)((uint8_t)(c - 'a') > 5);
	}
	return !bad;
}
