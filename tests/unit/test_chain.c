/* The hash chain: our SHA-256 calls against OpenSSL's EVP interface. */
#include <openssl/evp.h>
#include <stdlib.h>

#include "chain.h"
#include "unit.h"

/* hex(sha256(a || b)) through EVP: the reference. */
static void reference(const char *a, size_t an, const char *b, size_t bn, char out[65])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned n = 0;

	EVP_DigestInit_ex(c, EVP_sha256(), NULL);
	EVP_DigestUpdate(c, a, an);
	EVP_DigestUpdate(c, b, bn);
	EVP_DigestFinal_ex(c, d, &n);
	EVP_MD_CTX_free(c);
	for (unsigned i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

int main(void)
{
	struct es_chain *c = es_chain_new();
	char prev[ES_HASH_HEX + 1] = ES_GENESIS, got[ES_HASH_HEX + 1], want[ES_HASH_HEX + 1];
	char buf[1200];
	int bad = 0;

	CHECK(c != NULL);
	/* a known answer: sha256 of "abc" */
	CHECK(es_sha256_hex("abc", 3, got) == 0);
	CHECK_STR(got, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	/* lengths around the 64-byte block and its 55/56-byte padding edge,
	 * each record chained on the one before */
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (char)(' ' + (i * 7) % 90);
	for (size_t len = 0; len < sizeof(buf); len += len < 140 ? 1 : 61) {
		reference(prev, ES_HASH_HEX, buf, len, want);
		bad += es_chain_hash(c, prev, buf, len, got) != 0 || strcmp(got, want) != 0;
		bad += es_chain_check(c, prev, buf, len, want) != 1;
		want[len % ES_HASH_HEX] ^= 1; /* one bit off anywhere: a mismatch */
		bad += es_chain_check(c, prev, buf, len, want) != 0;
		memcpy(prev, got, ES_HASH_HEX);
	}
	CHECK(bad == 0);
	CHECK(es_is_hash_hex(prev, ES_HASH_HEX));
	CHECK(!es_is_hash_hex("0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef", 64));
	CHECK(!es_is_hash_hex(prev, ES_HASH_HEX - 1));
	es_chain_free(c);
	return unit_done("chain");
}
