/*
 * gen-events: write the standard synthetic data set, e-commerce events as
 * NDJSON input for es-append.  Same arguments, same bytes.
 *
 * Model, in short:
 *  - K streams: ~81% orders, 15% customers, K/25 (at most 2000) inventory (sku)
 *    streams.  Stream lengths are 1 + a Zipf-Mandelbrot share of the rest, so
 *    most streams have a handful of events and a few have thousands; the long
 *    ranks go preferably to sku streams (a best seller sells all the time)
 *    and customer streams stay short.
 *  - Each stream lives in a window of the run (a short one for an order, the
 *    whole run for a busy sku) and its events are random points in that
 *    window; a heap merges all streams into one order.  Each stream knows its
 *    length, so its events follow a plausible life (OrderCreated first, paid
 *    before shipped, CustomerRegistered first, no sale without stock).
 *  - Timestamps follow the output order: exponential gaps scaled by a
 *    day/night and weekday profile and by occasional flash-sale bursts, the
 *    mean gap chosen so that COUNT events cover about 120 days.
 *  - Orders and customers are numbered in order of their first event, so
 *    order-000001 is the oldest order and orders name registered customers.
 *
 * Reproducibility across machines: only our own PRNG and integer or IEEE
 * +-x/ arithmetic (own log/exp, no libm, no FMA contraction), total orders
 * in every sort.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

#define PROG "gen-events"
#define EXIT_USAGE 2
#define EXIT_WRITE 4

#define DEFAULT_COUNT 100000ULL
#define DEFAULT_SEED 1ULL
#define MAX_COUNT 100000000000ULL	/* 1e11: ~30 TB of output */
#define MAX_STREAMS 1000000000ULL
#define SPAN_DAYS 120.0
#define NSKU 2000			/* catalogue size */
#define MAXLINES 6			/* basket lines an order remembers */
#define OUTBUF (1 << 20)
#define LINE_MAX_BYTES 4096		/* no line comes near this */

/* ---------------------------------------------------------------- PRNG */

static uint64_t rng[4];		/* xoshiro256** */

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static inline uint64_t next64(void)
{
	uint64_t r = rotl(rng[1] * 5, 7) * 9, t = rng[1] << 17;
	rng[2] ^= rng[0];
	rng[3] ^= rng[1];
	rng[1] ^= rng[2];
	rng[0] ^= rng[3];
	rng[2] ^= t;
	rng[3] = rotl(rng[3], 45);
	return r;
}

static void seed_rng(uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		rng[i] = splitmix64(&seed);
}

/* uniform in [0, n), n < 2^32 */
static inline uint32_t below(uint32_t n)
{
	return (uint32_t)(((next64() >> 32) * (uint64_t)n) >> 32);
}

/* uniform in (0, 1] */
static inline double unif_pos(void)
{
	return (double)((next64() >> 11) + 1) * 0x1.0p-53;
}

static inline double unif(void)
{
	return (double)(next64() >> 11) * 0x1.0p-53;
}

/* ------------------------------------------- deterministic log and exp */

static const double LN2 = 0.69314718055994530942;

/* natural log of a positive finite x; ~1e-15 relative error */
static double dlog(double x)
{
	uint64_t b;
	double m;
	int e;

	memcpy(&b, &x, sizeof b);
	e = (int)((b >> 52) & 0x7ff);
	if (e == 0) {		/* subnormal */
		x *= 0x1.0p54;
		memcpy(&b, &x, sizeof b);
		e = (int)((b >> 52) & 0x7ff) - 54;
	}
	e -= 1022;		/* x = m * 2^e, m in [0.5, 1) */
	b = (b & 0x000fffffffffffffULL) | 0x3fe0000000000000ULL;
	memcpy(&m, &b, sizeof m);
	if (m < 0.70710678118654752440) {
		m *= 2;
		e--;
	}
	/* log m = 2 atanh(s), |s| < 0.172 */
	double s = (m - 1) / (m + 1), s2 = s * s;
	double t = 1.0 / 21;
	t = t * s2 + 1.0 / 19;
	t = t * s2 + 1.0 / 17;
	t = t * s2 + 1.0 / 15;
	t = t * s2 + 1.0 / 13;
	t = t * s2 + 1.0 / 11;
	t = t * s2 + 1.0 / 9;
	t = t * s2 + 1.0 / 7;
	t = t * s2 + 1.0 / 5;
	t = t * s2 + 1.0 / 3;
	t = t * s2 + 1.0;
	return 2 * s * t + e * LN2;
}

static double dexp(double y)
{
	static const double inv[] = {
		0, 1.0, 1.0 / 2, 1.0 / 3, 1.0 / 4, 1.0 / 5, 1.0 / 6, 1.0 / 7,
		1.0 / 8, 1.0 / 9, 1.0 / 10, 1.0 / 11, 1.0 / 12, 1.0 / 13,
	};
	if (y < -700)
		return 0;
	if (y > 700)
		y = 700;
	double kf = y / LN2;
	int k = (int)(kf < 0 ? kf - 0.5 : kf + 0.5);
	double r = y - k * LN2, p = 1;	/* |r| <= 0.35 */
	for (int n = 13; n >= 1; n--)
		p = 1 + p * r * inv[n];
	uint64_t b = (uint64_t)(k + 1023) << 52;
	double scale;
	memcpy(&scale, &b, sizeof scale);
	return p * scale;
}

/* exponential with mean 1 */
static inline double expo(void)
{
	return -dlog(unif_pos());
}

/*
 * A Zipf-Mandelbrot-like rank in [0, n): density proportional to 1/(x + q),
 * by inverting its continuous CDF.  lr = dlog((n + q) / q), precomputed.
 */
static inline uint32_t zipf(uint32_t n, double q, double lr)
{
	double x = q * dexp(unif() * lr) - q;
	uint32_t r = (uint32_t)x;
	return r < n ? r : n - 1;
}

struct zipf_dist {
	double q, lr;
};

static struct zipf_dist zipf_init(uint32_t n, double q)
{
	struct zipf_dist z = { q, dlog(((double)n + q) / q) };
	return z;
}

/* ------------------------------------------------------ the domain tables */

enum currency { EUR, USD, GBP, CHF, SEK, PLN, BRL, NCUR };
static const char *const currency_name[NCUR] = {
	"EUR", "USD", "GBP", "CHF", "SEK", "PLN", "BRL",
};

struct city {
	const char *name, *country;
	unsigned char currency, zipdigits, weight;
};

/* UTF-8; the unicode names have low weights so they stay occasional */
static const struct city cities[] = {
	{ "Berlin", "DE", EUR, 5, 10 },
	{ "Hamburg", "DE", EUR, 5, 8 },
	{ "München", "DE", EUR, 5, 4 },
	{ "Köln", "DE", EUR, 5, 3 },
	{ "Frankfurt", "DE", EUR, 5, 6 },
	{ "Wien", "AT", EUR, 4, 6 },
	{ "Zürich", "CH", CHF, 4, 4 },
	{ "Genève", "CH", CHF, 4, 2 },
	{ "Basel", "CH", CHF, 4, 4 },
	{ "Paris", "FR", EUR, 5, 10 },
	{ "Lyon", "FR", EUR, 5, 5 },
	{ "Madrid", "ES", EUR, 5, 7 },
	{ "Málaga", "ES", EUR, 5, 2 },
	{ "Lisboa", "PT", EUR, 4, 4 },
	{ "Amsterdam", "NL", EUR, 4, 7 },
	{ "Rotterdam", "NL", EUR, 4, 4 },
	{ "London", "GB", GBP, 5, 10 },
	{ "Manchester", "GB", GBP, 5, 5 },
	{ "Stockholm", "SE", SEK, 5, 5 },
	{ "Malmö", "SE", SEK, 5, 2 },
	{ "Kraków", "PL", PLN, 5, 2 },
	{ "Warsaw", "PL", PLN, 5, 4 },
	{ "New York", "US", USD, 5, 9 },
	{ "Chicago", "US", USD, 5, 6 },
	{ "Austin", "US", USD, 5, 5 },
	{ "São Paulo", "BR", BRL, 5, 3 },
	{ "東京", "JP", USD, 4, 2 },
	{ "Reykjavík", "IS", EUR, 3, 1 },
};
#define NCITY (sizeof cities / sizeof cities[0])

static const char *const first_names[] = {
	"Anna", "Ben", "Clara", "David", "Emma", "Felix", "Hannah", "Jonas",
	"Lena", "Lukas", "Maria", "Noah", "Olivia", "Paul", "Sophie", "Tom",
	"Liam", "Mia", "Ahmed", "Fatima", "Priya", "Yuki", "Mei", "Ana",
	"José", "Zoë", "Søren", "Łukasz", "François", "Chloé",
};
static const char *const last_names[] = {
	"Müller", "Schmidt", "Smith", "Johnson", "Garcia", "Martin", "Rossi",
	"Novak", "Jensen", "Kowalski", "Silva", "Dubois", "Andersson",
	"O'Brien", "Nguyen", "Tanaka", "Kim", "Brown", "Weber", "Meyer",
	"Fischer", "Bauer", "Wagner", "Lopez", "Ivanova", "Bianchi", "Peeters",
	"García", "Åström", "佐藤",
};
static const char *const streets[] = {
	"Main St", "High Street", "Oak Avenue", "Market Street", "Church Road",
	"Hauptstrasse", "Kungsgatan", "Via Roma", "Rue Lafayette", "Calle Mayor",
	"Damrak", "Baker Street", "Elm Street", "Ringstrasse", "Storgatan",
	"Bahnhofstraße", "Rue de la Paix", "Calle de Alcalá", "Rua Augusta",
	"Ulica Długa",
};
static const char *const carriers[] = {
	"DHL", "UPS", "FedEx", "DPD", "GLS", "PostNL", "La Poste", "Royal Mail",
};
static const char *const cancel_reasons[] = {
	"customer request", "customer request", "customer request",
	"payment failed", "out of stock", "fraud suspected",
	"address invalid", "duplicate order",
	"customer wrote \"changed my mind\"",
};
static const char *const adjust_reasons[] = {
	"count correction", "damaged", "lost", "returned", "expired",
};

#define NELEM(a) ((uint32_t)(sizeof(a) / sizeof((a)[0])))

static uint32_t sku_price[NSKU + 1];	/* cents, by sku number */
static uint16_t sku_by_pop[NSKU];	/* popularity rank -> sku number */
static uint32_t city_cum[NCITY], city_total;

static void make_catalogue(void)
{
	static const uint32_t endings[] = { 99, 99, 99, 49, 95, 0, 50, 90 };

	for (uint32_t i = 1; i <= NSKU; i++) {
		/* log-normal-ish around 25.00, from 0.99 to ~2500 */
		double g = unif() + unif() + unif() + unif() - 2;	/* ~N(0,.58) */
		double v = 25 * dexp(g * 2.0);
		uint32_t units = v < 1 ? 0 : v > 2500 ? 2500 : (uint32_t)v;
		sku_price[i] = units * 100 + endings[below(NELEM(endings))];
		if (sku_price[i] < 99)
			sku_price[i] = 99;
	}
	for (uint32_t i = 0; i < NSKU; i++)
		sku_by_pop[i] = (uint16_t)(i + 1);
	for (uint32_t i = NSKU - 1; i > 0; i--) {
		uint32_t j = below(i + 1);
		uint16_t t = sku_by_pop[i];
		sku_by_pop[i] = sku_by_pop[j];
		sku_by_pop[j] = t;
	}
	for (uint32_t i = 0; i < NCITY; i++)
		city_cum[i] = (city_total += cities[i].weight);
}

static uint32_t pick_city(void)
{
	uint32_t r = below(city_total), i = 0;
	while (city_cum[i] <= r)
		i++;
	return i;
}

/* ------------------------------------------------------------- streams */

enum kind { K_ORDER, K_CUSTOMER, K_SKU };
enum plan { P_COMPLETE, P_CANCEL, P_PAY_CANCEL };
enum { F_PAID = 1 };

struct line {
	uint16_t sku, qty;
};

struct stream {
	uint64_t len, done;
	double start, span, x;	/* window in [0,1) and last point in it */
	uint64_t corr[2], last[2];	/* order's correlation; last event id */
	int64_t amount;		/* order: basket in cents; sku: stock */
	uint32_t num;		/* the number in the stream name */
	uint32_t customer;	/* order: its customer's number */
	unsigned char kind, plan, flags, currency, nlines;
	struct line lines[MAXLINES];
};

struct hent {
	double pos;
	uint32_t idx;
};

static struct stream *st;
static struct hent *heap;
static uint32_t nheap;
static uint32_t *order_idx;	/* order number -> stream index */
static unsigned char *cust_city;	/* customer number -> city */
static uint32_t n_orders, n_customers, max_customers;
static struct zipf_dist sku_zipf;

static inline int hless(const struct hent *a, const struct hent *b)
{
	return a->pos < b->pos || (a->pos == b->pos && a->idx < b->idx);
}

static void sift_down(uint32_t i)
{
	struct hent e = heap[i];
	for (;;) {
		uint32_t c = 2 * i + 1;
		if (c >= nheap)
			break;
		if (c + 1 < nheap && hless(&heap[c + 1], &heap[c]))
			c++;
		if (!hless(&heap[c], &e))
			break;
		heap[i] = heap[c];
		i = c;
	}
	heap[i] = e;
}

/* the next of s's remaining (len - done) sorted uniform points in its window */
static double next_point(struct stream *s)
{
	double rem = (double)(s->len - s->done);
	s->x += (1 - s->x) * (1 - dexp(dlog(unif_pos()) / rem));
	return s->start + s->span * s->x;
}

struct rankkey {
	double key;
	uint32_t idx;
};

static int cmp_rankkey(const void *a, const void *b)
{
	const struct rankkey *x = a, *y = b;
	if (x->key != y->key)
		return x->key > y->key ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int cmp_sku_len(const void *a, const void *b)
{
	const struct stream *x = &st[*(const uint32_t *)a];
	const struct stream *y = &st[*(const uint32_t *)b];
	if (x->len != y->len)
		return x->len > y->len ? -1 : 1;
	return *(const uint32_t *)a < *(const uint32_t *)b ? -1 : 1;
}

static int setup_streams(uint64_t count, uint32_t k)
{
	uint32_t nsku = k >= 3 ? k / 25 : 0, ncust = k >= 2 ? k / 20 * 3 : 0;
	if (nsku > NSKU)
		nsku = NSKU;
	if (k >= 3 && nsku == 0)
		nsku = 1;
	if (k >= 2 && ncust == 0)
		ncust = 1;
	uint32_t nord = k - nsku - ncust;

	st = calloc(k, sizeof *st);
	heap = malloc((size_t)k * sizeof *heap);
	order_idx = calloc((size_t)nord + 1, sizeof *order_idx);
	cust_city = calloc((size_t)ncust + 1, 1);
	struct rankkey *rk = malloc((size_t)k * sizeof *rk);
	uint64_t *cnt = calloc(k, sizeof *cnt);
	uint32_t *skus = malloc(((size_t)nsku + 1) * sizeof *skus);
	if (!st || !heap || !order_idx || !cust_city || !rk || !cnt || !skus)
		return -1;
	max_customers = ncust;

	/* Lengths: one event each, the rest by a skewed choice of rank. */
	struct zipf_dist z = zipf_init(k, 10);
	for (uint64_t i = k; i < count; i++)
		cnt[zipf(k, z.q, z.lr)]++;

	/* Ranks to streams: weighted shuffle, skus first, customers last. */
	for (uint32_t i = 0; i < k; i++) {
		unsigned char kind = i < nord ? K_ORDER :
			i < nord + ncust ? K_CUSTOMER : K_SKU;
		double w = kind == K_SKU ? 40 : kind == K_ORDER ? 1 : 0.15;
		st[i].kind = kind;
		rk[i].key = dlog(unif_pos()) / w;
		rk[i].idx = i;
	}
	qsort(rk, k, sizeof *rk, cmp_rankkey);
	for (uint32_t r = 0; r < k; r++)
		st[rk[r].idx].len = 1 + cnt[r];
	free(rk);
	free(cnt);

	/* The busiest inventory streams are the most popular products. */
	for (uint32_t i = 0; i < nsku; i++)
		skus[i] = nord + ncust + i;
	qsort(skus, nsku, sizeof *skus, cmp_sku_len);
	for (uint32_t i = 0; i < nsku; i++)
		st[skus[i]].num = sku_by_pop[i];
	free(skus);

	/* Windows: an order lives for days, a customer or sku for months. */
	for (uint32_t i = 0; i < k; i++) {
		struct stream *s = &st[i];
		double l = (double)s->len, span;
		if (s->kind == K_ORDER)
			span = (0.004 + 0.002 * (l - 1)) * (0.5 + unif());
		else if (s->kind == K_CUSTOMER)
			span = 0.1 + 0.9 * unif() + 0.001 * l;
		else
			span = l >= 50 ? 1 : 0.6 + 0.4 * unif();
		if (span > 1)
			span = 1;
		s->span = span;
		s->start = (1 - span) * unif();
		heap[i].pos = next_point(s);
		heap[i].idx = i;
	}
	nheap = k;
	for (uint32_t i = k / 2; i-- > 0;)
		sift_down(i);
	sku_zipf = zipf_init(NSKU, 5);
	return 0;
}

/* ---------------------------------------------------------------- time */

static int64_t t0_us;		/* --start */
static double rel_us;		/* time since t0 */
static double mean_gap_us;
static double next_burst_us, burst_end_us, burst_mult = 1;

/* shop activity by hour (UTC), normalized to mean 1 at start-up */
static double hour_rate[25] = {
	0.55, 0.35, 0.22, 0.15, 0.12, 0.15, 0.30, 0.55, 0.80, 1.00, 1.10, 1.20,
	1.35, 1.30, 1.20, 1.15, 1.20, 1.35, 1.55, 1.75, 1.85, 1.70, 1.30, 0.90,
};
/* Monday first */
static double week_rate[7] = { 0.92, 0.90, 0.92, 0.95, 1.05, 1.15, 1.20 };

#define DAY_US 86400000000LL
#define BURST_EVERY_US (2.0 * DAY_US)
#define QUARTER_US 900000000LL

static void setup_time(uint64_t count)
{
	double hs = 0, ws = 0;
	for (int h = 0; h < 24; h++)
		hs += hour_rate[h];
	for (int h = 0; h < 24; h++)
		hour_rate[h] *= 24 / hs;
	hour_rate[24] = hour_rate[0];
	for (int d = 0; d < 7; d++)
		ws += week_rate[d];
	for (int d = 0; d < 7; d++)
		week_rate[d] *= 7 / ws;
	/* bursts: 15-90 min at 3-8x every ~2 days add ~8% activity */
	mean_gap_us = SPAN_DAYS * DAY_US * 1.08 / (double)(count ? count : 1);
	next_burst_us = expo() * BURST_EVERY_US;
}

static double rate_at(int64_t t)
{
	int64_t day = t / DAY_US, us = t % DAY_US;
	double hf = (double)us / 3600e6;
	int h = (int)hf;
	double f = hf - h;
	double r = hour_rate[h] + f * (hour_rate[h + 1] - hour_rate[h]);
	r *= week_rate[(day + 3) % 7];	/* 1970-01-01 was a Thursday */
	return r;
}

/* start or end a flash-sale burst at the current time */
static void update_burst(void)
{
	if (burst_mult != 1 && rel_us >= burst_end_us) {
		burst_mult = 1;
		next_burst_us = rel_us + expo() * BURST_EVERY_US;
	}
	if (burst_mult == 1 && rel_us >= next_burst_us) {
		burst_end_us = rel_us + (15 + 75 * unif()) * 60e6;
		burst_mult = 3 + 5 * unif();
	}
}

/*
 * Move to the next event: an exponential amount of work at rate 1, done at
 * the shop's rate, integrated over quarter hours so that a gap which runs
 * into the night (or a burst) slows down (or speeds up) on the way.
 */
static void advance_time(void)
{
	double w = expo() * mean_gap_us;

	for (;;) {
		update_burst();
		int64_t now = t0_us + (int64_t)rel_us;
		double end = (double)((now / QUARTER_US + 1) * QUARTER_US - t0_us);
		double edge = burst_mult != 1 ? burst_end_us : next_burst_us;
		if (edge < end)
			end = edge;
		double r = rate_at(now) * burst_mult, cap = (end - rel_us) * r;
		if (w <= cap) {
			rel_us += w / r;
			return;
		}
		w -= cap;
		rel_us = end;
	}
}

static void civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int)((int64_t)yoe + era * 400 + (*m <= 2));
}

static int64_t days_from_civil(int y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static inline void two(char *p, unsigned v)
{
	p[0] = (char)('0' + v / 10);
	p[1] = (char)('0' + v % 10);
}

/* "YYYY-MM-DDTHH:MM:SS.ffffffZ", 27 bytes; t >= 0 */
static void format_ts(char *p, int64_t t)
{
	static int64_t cached_day = -1;
	static char date[10];
	int64_t day = t / DAY_US, us = t % DAY_US;

	if (day != cached_day) {
		int y;
		unsigned m, d;
		civil_from_days(day, &y, &m, &d);
		two(date, (unsigned)y / 100);
		two(date + 2, (unsigned)y % 100);
		date[4] = '-';
		two(date + 5, m);
		date[7] = '-';
		two(date + 8, d);
		cached_day = day;
	}
	memcpy(p, date, 10);
	unsigned sec = (unsigned)(us / 1000000), frac = (unsigned)(us % 1000000);
	p[10] = 'T';
	two(p + 11, sec / 3600);
	p[13] = ':';
	two(p + 14, sec / 60 % 60);
	p[16] = ':';
	two(p + 17, sec % 60);
	p[19] = '.';
	for (int i = 25; i >= 20; i--) {
		p[i] = (char)('0' + frac % 10);
		frac /= 10;
	}
	p[26] = 'Z';
}

static int digits(const char **s, int n, unsigned *v)
{
	*v = 0;
	for (int i = 0; i < n; i++, (*s)++) {
		if (**s < '0' || **s > '9')
			return -1;
		*v = *v * 10 + (unsigned)(**s - '0');
	}
	return 0;
}

static int expect(const char **s, char c)
{
	return *(*s)++ == c ? 0 : -1;
}

/* YYYY-MM-DDTHH:MM:SS[.fraction](Z|+00:00), 1970 <= YYYY <= 9000 */
static int parse_time(const char *s, int64_t *out)
{
	static const unsigned mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	unsigned y, mo, d, h, mi, se, us = 0;

	if (digits(&s, 4, &y) || expect(&s, '-') || digits(&s, 2, &mo) ||
	    expect(&s, '-') || digits(&s, 2, &d) ||
	    (*s != 'T' && *s != 't') || (s++, digits(&s, 2, &h)) ||
	    expect(&s, ':') || digits(&s, 2, &mi) || expect(&s, ':') ||
	    digits(&s, 2, &se))
		return -1;
	if (*s == '.') {
		int n = 0;
		for (s++; *s >= '0' && *s <= '9'; s++, n++)
			if (n < 6)
				us = us * 10 + (unsigned)(*s - '0');
		if (n == 0)
			return -1;
		for (; n < 6; n++)
			us *= 10;
	}
	if (*s == 'Z' || *s == 'z')
		s++;
	else if (strncmp(s, "+00:00", 6) == 0)
		s += 6;
	else
		return -1;
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (*s || y < 1970 || y > 9000 || mo < 1 || mo > 12 || d < 1 ||
	    d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap) || h > 23 ||
	    mi > 59 || se > 59)
		return -1;
	int64_t days = days_from_civil((int)y, mo, d);
	*out = ((days * 86400 + h * 3600 + mi * 60 + se) * 1000000LL) + us;
	return 0;
}

/* -------------------------------------------------------------- output */

static char outbuf[OUTBUF];
static char tsbuf[27];
static int64_t now_ms;

static void write_all(const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(STDOUT_FILENO, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EPIPE) {
			/* reader went away: end as SIGPIPE would have */
			sigset_t set;
			sigemptyset(&set);
			sigaddset(&set, SIGPIPE);
			signal(SIGPIPE, SIG_DFL);
			sigprocmask(SIG_UNBLOCK, &set, NULL);
			raise(SIGPIPE);
			_exit(128 + SIGPIPE);
		}
		if (w <= 0) {
			fprintf(stderr, PROG ": write error: %s\n",
				strerror(w < 0 ? errno : EIO));
			exit(EXIT_WRITE);
		}
		p += w;
		n -= (size_t)w;
	}
}

#define LIT(p, s) (memcpy((p), (s), sizeof(s) - 1), (p) + sizeof(s) - 1)

static char *put_u(char *p, uint64_t v, int width)
{
	char t[24];
	int n = 0;
	do {
		t[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n < width)
		t[n++] = '0';
	while (n)
		*p++ = t[--n];
	return p;
}

static char *put_i(char *p, int64_t v)
{
	if (v < 0) {
		*p++ = '-';
		return put_u(p, (uint64_t)-v, 1);
	}
	return put_u(p, (uint64_t)v, 1);
}

/* cents as a JSON number with exactly two decimals */
static char *put_money(char *p, int64_t cents)
{
	if (cents < 0) {
		*p++ = '-';
		cents = -cents;
	}
	p = put_u(p, (uint64_t)cents / 100, 1);
	*p++ = '.';
	two(p, (unsigned)(cents % 100));
	return p + 2;
}

/* UTF-8 text escaped for the inside of a JSON string */
static char *put_esc(char *p, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			*p++ = '\\';
			*p++ = (char)c;
		} else if (c < 0x20) {
			p = LIT(p, "\\u00");
			*p++ = hex[c >> 4];
			*p++ = hex[c & 15];
		} else {
			*p++ = (char)c;
		}
	}
	return p;
}

static char *put_str(char *p, const char *s)
{
	*p++ = '"';
	p = put_esc(p, s);
	*p++ = '"';
	return p;
}

static char *put_hex(char *p, uint64_t v, int nibbles)
{
	static const char hex[] = "0123456789abcdef";
	for (int i = nibbles - 1; i >= 0; i--)
		p[nibbles - 1 - i] = hex[(v >> (4 * i)) & 15];
	return p + nibbles;
}

/* UUIDv7: 48-bit unix ms, version 7, 12 random bits, variant 10, 62 random */
static void uuid7(uint64_t u[2])
{
	u[0] = ((uint64_t)now_ms << 16) | 0x7000 | (next64() >> 52);
	u[1] = 0x8000000000000000ULL | (next64() >> 2);
}

static char *put_uuid(char *p, const uint64_t u[2])
{
	*p++ = '"';
	p = put_hex(p, u[0] >> 32, 8);
	*p++ = '-';
	p = put_hex(p, u[0] >> 16, 4);
	*p++ = '-';
	p = put_hex(p, u[0], 4);
	*p++ = '-';
	p = put_hex(p, u[1] >> 48, 4);
	*p++ = '-';
	p = put_hex(p, u[1], 12);
	*p++ = '"';
	return p;
}

static char *put_name(char *p, int kind, uint32_t num)
{
	*p++ = '"';
	if (kind == K_ORDER)
		p = put_u(LIT(p, "order-"), num, 6);
	else if (kind == K_CUSTOMER)
		p = put_u(LIT(p, "customer-"), num, 5);
	else
		p = put_u(LIT(p, "sku-"), num, 4);
	*p++ = '"';
	return p;
}

/* {"stream":..,"type":..,"id":..,"ts":..,"data": */
static char *head(char *p, const struct stream *s, const char *type,
		  const uint64_t id[2])
{
	p = put_name(LIT(p, "{\"stream\":"), s->kind, s->num);
	p = put_str(LIT(p, ",\"type\":"), type);
	p = put_uuid(LIT(p, ",\"id\":"), id);
	p = LIT(p, ",\"ts\":\"");
	memcpy(p, tsbuf, sizeof tsbuf);
	p += sizeof tsbuf;
	return LIT(p, "\",\"data\":");
}

/* ,"meta":{...}}\n with user as already-formatted JSON text */
static char *tail(char *p, const uint64_t corr[2], const uint64_t cause[2],
		  const char *user_json, size_t user_len)
{
	p = put_uuid(LIT(p, ",\"meta\":{\"correlation\":"), corr);
	p = put_uuid(LIT(p, ",\"causation\":"), cause);
	p = LIT(p, ",\"user\":");
	memcpy(p, user_json, user_len);
	p += user_len;
	return LIT(p, "}}\n");
}

struct user {
	char buf[40];
	size_t len;
};

static void user_set(struct user *u, int kind, uint32_t num)
{
	u->len = (size_t)(put_name(u->buf, kind, num) - u->buf);
}

static void user_staff(struct user *u, const char *role, uint32_t n)
{
	char *p = u->buf;
	*p++ = '"';
	size_t l = strlen(role);
	memcpy(p, role, l);
	p += l;
	if (n) {
		*p++ = '-';
		p = put_u(p, n, 1);
	}
	*p++ = '"';
	u->len = (size_t)(p - u->buf);
}

/* ------------------------------------------------------------- events */

static uint32_t pick_customer(void)
{
	if (n_customers == 0)	/* nobody registered yet */
		return 1 + below(max_customers ? max_customers : 1);
	/* early customers are the loyal ones */
	struct zipf_dist z = zipf_init(n_customers, 50);
	return 1 + zipf(n_customers, z.q, z.lr);
}

static uint32_t pick_sku(void)
{
	return sku_by_pop[zipf(NSKU, sku_zipf.q, sku_zipf.lr)];
}

static char *put_customer(char *p, uint32_t c)
{
	return put_name(LIT(p, "{\"customer\":"), K_CUSTOMER, c);
}

static char *order_item(char *p, struct stream *s, const uint64_t id[2])
{
	uint32_t sku = 0, qty = 0, j = 0;
	int remove = 0;

	if (s->nlines > 0 && below(100) < 12) {
		j = below(s->nlines);
		qty = s->lines[j].qty - (s->nlines == 1);	/* keep one unit */
		remove = qty > 0;
	}
	if (remove) {
		qty = 1 + below(qty);
		sku = s->lines[j].sku;
		s->lines[j].qty = (uint16_t)(s->lines[j].qty - qty);
		if (s->lines[j].qty == 0)
			s->lines[j] = s->lines[--s->nlines];
		s->amount -= (int64_t)qty * sku_price[sku];
	} else {
		sku = pick_sku();
		qty = below(10) < 7 ? 1 : 2 + below(below(10) < 8 ? 3 : 20);
		j = s->nlines < MAXLINES ? s->nlines++ : below(MAXLINES);
		s->lines[j].sku = (uint16_t)sku;
		s->lines[j].qty = (uint16_t)qty;
		s->amount += (int64_t)qty * sku_price[sku];
	}
	p = head(p, s, remove ? "ItemRemoved" : "ItemAdded", id);
	p = put_customer(p, s->customer);
	p = put_name(LIT(p, ",\"sku\":"), K_SKU, sku);
	p = put_u(LIT(p, ",\"qty\":"), qty, 1);
	p = put_money(LIT(p, ",\"price\":"), sku_price[sku]);
	return LIT(p, "}");
}

static char *emit_order(char *p, struct stream *s, uint32_t idx)
{
	uint64_t id[2], cause[2];
	struct user u;

	uuid7(id);
	if (s->done == 0) {
		s->num = ++n_orders;
		order_idx[s->num] = idx;
		s->customer = pick_customer();
		uint32_t c = s->customer <= n_customers ? cust_city[s->customer] : 0;
		s->currency = s->customer <= n_customers ?
			cities[c].currency : (unsigned char)below(NCUR);
		if (s->len == 2)
			s->plan = below(4) == 0 ? P_CANCEL : P_COMPLETE;
		else if (s->len >= 3 && below(100) < 8)
			s->plan = s->len >= 4 && below(3) == 0 ? P_PAY_CANCEL : P_CANCEL;
		uuid7(s->corr);
		uuid7(cause);
	}
	user_set(&u, K_CUSTOMER, s->customer);
	if (s->done == 0) {
		p = head(p, s, "OrderCreated", id);
		p = put_customer(p, s->customer);
		p = put_str(LIT(p, ",\"currency\":"), currency_name[s->currency]);
		p = LIT(p, "}");
		p = tail(p, s->corr, cause, u.buf, u.len);
		memcpy(s->last, id, sizeof s->last);
		return p;
	}

	uint64_t r = s->len - s->done;
	memcpy(cause, s->last, sizeof cause);
	if (s->plan != P_COMPLETE && r == 1) {
		p = head(p, s, "OrderCancelled", id);
		p = put_customer(p, s->customer);
		p = put_str(LIT(p, ",\"reason\":"),
			    cancel_reasons[below(NELEM(cancel_reasons))]);
		if (s->flags & F_PAID)
			p = put_money(LIT(p, ",\"refund\":"), s->amount);
		p = LIT(p, "}");
		if (below(4) == 0)
			user_staff(&u, "support", 1 + below(12));
	} else if ((s->plan == P_PAY_CANCEL && r == 2) ||
		   (s->plan == P_COMPLETE && ((s->len >= 4 && r == 2) ||
					      (s->len == 3 && r == 1)))) {
		s->flags |= F_PAID;
		p = head(p, s, "OrderPaid", id);
		p = put_customer(p, s->customer);
		p = put_money(LIT(p, ",\"amount\":"), s->amount);
		p = put_str(LIT(p, ",\"currency\":"), currency_name[s->currency]);
		p = LIT(p, "}");
		user_staff(&u, "payments", 0);
	} else if (s->plan == P_COMPLETE && s->len >= 4 && r == 1) {
		p = head(p, s, "OrderShipped", id);
		p = put_customer(p, s->customer);
		p = put_str(LIT(p, ",\"carrier\":"), carriers[below(NELEM(carriers))]);
		p = LIT(p, "}");
		user_staff(&u, "wms", 1 + below(4));
	} else {
		p = order_item(p, s, id);
	}
	p = tail(p, s->corr, cause, u.buf, u.len);
	memcpy(s->last, id, sizeof s->last);
	return p;
}

static char *put_address(char *p, uint32_t city)
{
	const struct city *c = &cities[city];
	p = put_esc(LIT(p, "\"street\":\""), streets[below(NELEM(streets))]);
	p = put_u(LIT(p, " "), 1 + below(below(4) ? 60 : 300), 1);
	p = LIT(p, "\"");
	uint32_t zmax = c->zipdigits == 3 ? 1000 : c->zipdigits == 4 ? 10000 : 100000;
	p = put_u(LIT(p, ",\"zip\":\""), below(zmax), c->zipdigits);
	p = put_str(LIT(p, "\",\"city\":"), c->name);
	return put_str(LIT(p, ",\"country\":"), c->country);
}

static char *emit_customer(char *p, struct stream *s)
{
	uint64_t id[2], corr[2], cause[2];
	struct user u;
	uint32_t city = pick_city();

	uuid7(id);
	uuid7(corr);
	if (s->done == 0) {
		s->num = ++n_customers;
		cust_city[s->num] = (unsigned char)city;
		memcpy(cause, corr, sizeof cause);
		p = head(p, s, "CustomerRegistered", id);
		p = put_esc(LIT(p, "{\"name\":\""), first_names[below(NELEM(first_names))]);
		p = put_esc(LIT(p, " "), last_names[below(NELEM(last_names))]);
		p = put_u(LIT(p, "\",\"email\":\"c"), s->num, 5);
		p = LIT(p, "@example.com\",");
		p = put_address(p, city);
		p = LIT(p, "}");
		user_set(&u, K_CUSTOMER, s->num);
	} else {
		cust_city[s->num] = (unsigned char)city;
		uuid7(cause);
		p = head(p, s, "AddressChanged", id);
		p = put_address(LIT(p, "{"), city);
		p = LIT(p, "}");
		if (below(6) == 0)
			user_staff(&u, "support", 1 + below(12));
		else
			user_set(&u, K_CUSTOMER, s->num);
	}
	p = tail(p, corr, cause, u.buf, u.len);
	memcpy(s->last, id, sizeof s->last);
	return p;
}

static char *emit_sku(char *p, struct stream *s)
{
	uint64_t id[2], corr[2], cause[2];
	struct user u;
	uint32_t roll = below(100), wh = 1 + s->num % 4;

	uuid7(id);
	if (s->done > 0 && s->amount >= 5 && roll >= 14 && n_orders > 0) {
		/* a sale, caused by a recent order */
		uint32_t back = n_orders < 200 ? n_orders : 200;
		uint32_t onum = n_orders - below(back);
		const struct stream *o = &st[order_idx[onum]];
		uint32_t qty = 1 + below(below(4) ? 1 : 3);
		s->amount -= qty;
		memcpy(corr, o->corr, sizeof corr);
		memcpy(cause, o->last, sizeof cause);
		p = head(p, s, "ItemSold", id);
		p = put_name(LIT(p, "{\"sku\":"), K_SKU, s->num);
		p = put_u(LIT(p, ",\"qty\":"), qty, 1);
		p = put_name(LIT(p, ",\"order\":"), K_ORDER, onum);
		p = LIT(p, "}");
		user_staff(&u, "shop", 0);
	} else if (s->done > 0 && s->amount >= 5 && roll >= 8) {
		int64_t qty = 1 + below(5);
		if (below(10) < 7)
			qty = -qty;
		s->amount += qty;
		uuid7(corr);
		uuid7(cause);
		p = head(p, s, "InventoryAdjusted", id);
		p = put_name(LIT(p, "{\"sku\":"), K_SKU, s->num);
		p = put_i(LIT(p, ",\"qty\":"), qty);
		p = put_str(LIT(p, ",\"reason\":"),
			    adjust_reasons[below(NELEM(adjust_reasons))]);
		p = LIT(p, "}");
		user_staff(&u, "ops", 1 + below(9));
	} else {
		uint32_t qty = 10 * (2 + below(49));
		s->amount += qty;
		uuid7(corr);
		uuid7(cause);
		p = head(p, s, "ItemReceived", id);
		p = put_name(LIT(p, "{\"sku\":"), K_SKU, s->num);
		p = put_u(LIT(p, ",\"qty\":"), qty, 1);
		p = put_u(LIT(p, ",\"warehouse\":\"wh-"), wh, 1);
		p = LIT(p, "\"}");
		user_staff(&u, "wms", wh);
	}
	p = tail(p, corr, cause, u.buf, u.len);
	memcpy(s->last, id, sizeof s->last);
	return p;
}

static void generate(uint64_t count)
{
	char *p = outbuf, *lim = outbuf + OUTBUF - LINE_MAX_BYTES;

	for (uint64_t i = 0; i < count; i++) {
		if (i > 0)
			advance_time();
		int64_t t = t0_us + (int64_t)rel_us;
		format_ts(tsbuf, t);
		now_ms = t / 1000;

		uint32_t idx = heap[0].idx;
		struct stream *s = &st[idx];
		if (s->kind == K_ORDER)
			p = emit_order(p, s, idx);
		else if (s->kind == K_CUSTOMER)
			p = emit_customer(p, s);
		else
			p = emit_sku(p, s);

		if (++s->done < s->len) {
			heap[0].pos = next_point(s);
		} else {
			heap[0] = heap[--nheap];
		}
		if (nheap)
			sift_down(0);
		if (p > lim) {
			write_all(outbuf, (size_t)(p - outbuf));
			p = outbuf;
		}
	}
	write_all(outbuf, (size_t)(p - outbuf));
}

/* ---------------------------------------------------------------- main */

static void usage(FILE *f)
{
	fputs("usage: " PROG " [-n COUNT] [-s SEED] [--streams K] [--start TIME]\n"
	      "Write COUNT synthetic e-commerce events (orders, customers, inventory)\n"
	      "as NDJSON on stdout, input for es-append. The same arguments give the\n"
	      "same bytes. Timestamps cover about 120 days whatever COUNT is.\n"
	      "\n"
	      "  -n, --count COUNT  number of events (default 100000)\n"
	      "  -s, --seed SEED    PRNG seed, unsigned 64-bit, decimal or 0x hex (default 1)\n"
	      "      --streams K    number of streams (default COUNT/20, at most COUNT)\n"
	      "      --start TIME   first timestamp, RFC 3339 UTC\n"
	      "                     (default 2026-01-01T00:00:00Z)\n"
	      "  -h, --help         show this help and exit\n"
	      "\n"
	      "Exit status: 0 ok, 2 bad usage, 4 write error.\n", f);
}

static int bad_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, PROG ": ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	usage(stderr);
	return EXIT_USAGE;
}

static int parse_u64(const char *s, int allow_hex, uint64_t max, uint64_t *out)
{
	uint64_t v = 0, base = 10;
	if (allow_hex && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	if (!*s)
		return -1;
	for (; *s; s++) {
		unsigned d;
		if (*s >= '0' && *s <= '9')
			d = (unsigned)(*s - '0');
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = (unsigned)(*s - 'a' + 10);
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = (unsigned)(*s - 'A' + 10);
		else
			return -1;
		if (v > (max - d) / base)
			return -1;
		v = v * base + d;
	}
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	enum { OPT_STREAMS = 256, OPT_START };
	static const struct option longopts[] = {
		{ "count", required_argument, NULL, 'n' },
		{ "seed", required_argument, NULL, 's' },
		{ "streams", required_argument, NULL, OPT_STREAMS },
		{ "start", required_argument, NULL, OPT_START },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t count = DEFAULT_COUNT, seed = DEFAULT_SEED, streams = 0;
	int c;

	t0_us = days_from_civil(2026, 1, 1) * DAY_US;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":n:s:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'n':
			if (parse_u64(optarg, 0, MAX_COUNT, &count))
				return bad_usage("bad count '%s'", optarg);
			break;
		case 's':
			if (parse_u64(optarg, 1, UINT64_MAX, &seed))
				return bad_usage("bad seed '%s'", optarg);
			break;
		case OPT_STREAMS:
			if (parse_u64(optarg, 0, MAX_STREAMS, &streams) || !streams)
				return bad_usage("bad stream count '%s'", optarg);
			break;
		case OPT_START:
			if (parse_time(optarg, &t0_us))
				return bad_usage("bad start time '%s' (want e.g. "
						 "2026-01-01T00:00:00Z)", optarg);
			break;
		case 'h':
			usage(stdout);
			if (fflush(stdout) == EOF || ferror(stdout)) {
				fprintf(stderr, PROG ": write error: %s\n", strerror(errno));
				return EXIT_WRITE;
			}
			return 0;
		case ':':
			return bad_usage("option '%s' needs an argument", argv[optind - 1]);
		default:
			return bad_usage("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return bad_usage("unexpected argument '%s'", argv[optind]);
	if (count == 0)
		return 0;
	if (!streams)
		streams = count / 20 ? count / 20 : 1;
	if (streams > MAX_STREAMS)
		streams = MAX_STREAMS;
	if (streams > count)
		streams = count;

	seed_rng(seed);
	make_catalogue();
	if (setup_streams(count, (uint32_t)streams)) {
		fprintf(stderr, PROG ": out of memory for %llu streams\n",
			(unsigned long long)streams);
		return 1;
	}
	setup_time(count);
	generate(count);
	return 0;
}
