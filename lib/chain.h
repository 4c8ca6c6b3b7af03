/* chain.h: the SHA-256 hash chain of the log.
 *
 * hash = sha256(prev_hash_hex || bytes), where bytes is the stored record from
 * its '{' up to, not including, ',"hash":', and the first record's prev is 64
 * '0's (ES_GENESIS). Hashes travel as 64 lowercase hex digits.
 */
#ifndef ES_CHAIN_H
#define ES_CHAIN_H

#include <stddef.h>

#define ES_HASH_HEX 64
#define ES_GENESIS "0000000000000000000000000000000000000000000000000000000000000000"

struct es_chain;

/* A hasher; one per thread. NULL on allocation failure. */
struct es_chain *es_chain_new(void);
void es_chain_free(struct es_chain *c);
/* out = hex(sha256(prev || bytes)); out has room for 65 bytes. 0 or -1. */
int es_chain_hash(struct es_chain *c, const char prev[ES_HASH_HEX],
		  const char *bytes, size_t len, char out[ES_HASH_HEX + 1]);
/* 1 when hex(sha256(prev || bytes)) is expect, 0 when not, -1 on failure.
 * A match also proves that expect is 64 lowercase hex digits. */
int es_chain_check(struct es_chain *c, const char prev[ES_HASH_HEX], const char *bytes,
		   size_t len, const char expect[ES_HASH_HEX]);
/* Plain sha256 of a buffer, hex. 0 or -1. */
int es_sha256_hex(const void *data, size_t len, char out[ES_HASH_HEX + 1]);
/* A running sha256 over bytes that come in pieces (an archive file). */
struct es_sha256;
struct es_sha256 *es_sha256_begin(void); /* NULL when out of memory */
void es_sha256_add(struct es_sha256 *h, const void *data, size_t len);
/* out = the hex digest of everything added. 0 or -1. h stays to be freed. */
int es_sha256_end(struct es_sha256 *h, char out[ES_HASH_HEX + 1]);
void es_sha256_free(struct es_sha256 *h);
/* Whether s holds 64 lowercase hex digits. */
int es_is_hash_hex(const char *s, size_t len);

#endif
