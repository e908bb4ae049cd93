/* test-spam-token — the spam tokenizer: DSPAM's SBPH and OSB windows on the
 * seed's sentence, header prefixes, MIME decoding, skipped attachments. */
#define _GNU_SOURCE
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "index/spam_token.h"

#define MAXTOK 4096

struct seen {
	char *text[MAXTOK];
	uint64_t hash[MAXTOK];
	size_t n;
};

static void record(uint64_t hash, const char *text, size_t len, void *ctx)
{
	struct seen *s = ctx;
	assert_int_equal(strlen(text), len);
	assert_true(s->n < MAXTOK);
	s->text[s->n] = strdup(text);
	s->hash[s->n] = hash;
	s->n++;
}

static int has(const struct seen *s, const char *text)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->text[i], text) == 0)
			return 1;
	return 0;
}

static void clear(struct seen *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->text[i]);
	s->n = 0;
}

static const char sentence[] =
    "Heute Abend war ich mit meiner Freundin im Kino und habe viel gelacht";

static void test_sbph_seed_sentence(void **state)
{
	(void)state;
	static struct seen s;
	static const char *const mit[] = {
	    "mit",
	    "ich+mit",
	    "war+#+mit",
	    "war+ich+mit",
	    "Abend+#+#+mit",
	    "Abend+#+ich+mit",
	    "Abend+war+#+mit",
	    "Abend+war+ich+mit",
	    "Heute+#+#+#+mit",
	    "Heute+#+#+ich+mit",
	    "Heute+#+war+#+mit",
	    "Heute+#+war+ich+mit",
	    "Heute+Abend+#+#+mit",
	    "Heute+Abend+#+ich+mit",
	    "Heute+Abend+war+#+mit",
	    "Heute+Abend+war+ich+mit",
	};

	spam_tokenize_text(sentence, strlen(sentence), NULL, 0, SPAM_TOK_SBPH, record, &s);
	for (size_t i = 0; i < sizeof(mit) / sizeof(mit[0]); i++)
		assert_true(has(&s, mit[i]));
	/* 13 words: 1 + 2 + 4 + 8 + 16 * 9 */
	assert_int_equal(s.n, 159);
	size_t ending_mit = 0;
	for (size_t i = 0; i < s.n; i++) {
		size_t l = strlen(s.text[i]);
		assert_true(s.text[i][0] != '#');
		assert_true(s.text[i][l - 1] != '#');
		assert_int_equal(s.hash[i], spam_token_hash(s.text[i], l));
		if (l >= 3 && strcmp(s.text[i] + l - 3, "mit") == 0)
			ending_mit++;
	}
	assert_int_equal(ending_mit, 16);
	assert_true(has(&s, "gelacht"));
	assert_true(has(&s, "habe+viel+gelacht"));
	assert_false(has(&s, "Heute+#+#+#+#+meiner")); /* wider than the window */
	clear(&s);
}

static void test_osb_pairs_only(void **state)
{
	(void)state;
	static struct seen s;
	spam_tokenize_text(sentence, strlen(sentence), NULL, 0, SPAM_TOK_OSB, record, &s);
	assert_true(has(&s, "ich+mit"));
	assert_true(has(&s, "war+#+mit"));
	assert_true(has(&s, "Abend+#+#+mit"));
	assert_true(has(&s, "Heute+#+#+#+mit"));
	assert_false(has(&s, "mit"));
	assert_false(has(&s, "war+ich+mit"));
	/* 0 + 1 + 2 + 3 + 4 * 9 */
	assert_int_equal(s.n, 42);
	clear(&s);
}

static void test_deterministic(void **state)
{
	(void)state;
	static const char msg[] =
	    "From: a@example.org\r\nSubject: Hello there\r\n\r\nSome body text here.\r\n";
	struct spam_tokens a, b;

	spam_tokens_collect(&a, msg, strlen(msg), SPAM_TOK_SBPH, 1);
	spam_tokens_collect(&b, msg, strlen(msg), SPAM_TOK_SBPH, 0);
	assert_true(a.n > 0);
	assert_int_equal(a.n, b.n);
	assert_memory_equal(a.hash, b.hash, a.n * sizeof(uint64_t));
	for (size_t i = 1; i < a.n; i++)
		assert_true(a.hash[i - 1] < a.hash[i]);
	long k = spam_tokens_find(&a, spam_token_hash("Subject*Hello+there", 19));
	assert_true(k >= 0);
	assert_string_equal(a.text[k], "Subject*Hello+there");
	assert_int_equal(spam_tokens_find(&a, 12345), -1);
	/* a known value: the CRC is DSPAM's (reflected ISO polynomial, initial 0) */
	assert_int_equal(spam_token_hash("", 0), 0);
	assert_true(spam_token_hash("mit", 3) != spam_token_hash("Mit", 3));
	spam_tokens_free(&a);
	spam_tokens_free(&b);
}

/* With windows: the same set, and each word's tokens by mask, the word alone
 * first, each at the level its mask says; the parents of a token (one earlier
 * word less) are its sub-windows, with their texts. */
static void test_windows(void **state)
{
	(void)state;
	static const char msg[] =
	    "From: a@example.org\r\nSubject: Heute Abend war ich mit\r\n\r\n"
	    "Heute Abend war ich mit Anna im Kino, http://kino.example/film heute.\r\n";
	struct spam_tokens a, b, o;

	spam_tokens_collect(&a, msg, strlen(msg), SPAM_TOK_SBPH,
			    SPAM_COLLECT_TEXT | SPAM_COLLECT_WINDOWS);
	spam_tokens_collect(&b, msg, strlen(msg), SPAM_TOK_SBPH, 0);
	assert_int_equal(a.n, b.n);
	assert_memory_equal(a.hash, b.hash, a.n * sizeof(uint64_t));
	assert_null(b.win);
	assert_non_null(a.win);
	assert_non_null(a.level);
	/* header: From (3 words: a, example, org), Subject (5), body (9: the URL is apart) */
	assert_int_equal(a.nwin, 3 + 5 + 9);
	size_t nmasks = 0;
	for (size_t p = 0; p < a.nwin; p++) {
		const uint32_t *w = a.win + p * SPAM_WINDOW_MASKS;
		assert_true(w[0] != UINT32_MAX);
		assert_int_equal(a.level[w[0]], 0);
		for (unsigned m = 0; m < SPAM_WINDOW_MASKS; m++) {
			if (w[m] == UINT32_MAX)
				continue;
			nmasks++;
			assert_int_equal(a.level[w[m]], __builtin_popcount(m));
		}
	}
	/* a window of n earlier words gives 2^n tokens: From 1+2+4, Subject 1+...+16, body 1+2+4+8
	 * + 5*16 */
	assert_int_equal(nmasks, 7 + 31 + 15 + 5 * 16);
	/* the Subject's 5th word: all 16 windows */
	long k = spam_tokens_find(&a, spam_token_hash("Subject*Heute+Abend+war+ich+mit", 31));
	assert_true(k >= 0);
	assert_int_equal(a.level[k], 4);
	int found = 0;
	for (size_t p = 0; p < a.nwin; p++) {
		const uint32_t *w = a.win + p * SPAM_WINDOW_MASKS;
		if (w[15] != (uint32_t)k)
			continue;
		found = 1;
		assert_string_equal(a.text[w[0]], "Subject*mit");
		assert_string_equal(a.text[w[1]], "Subject*ich+mit");
		assert_string_equal(a.text[w[8]], "Subject*Heute+#+#+#+mit");
		assert_string_equal(a.text[w[7]], "Subject*Abend+war+ich+mit");
		assert_string_equal(a.text[w[14]], "Subject*Heute+Abend+war+#+mit");
		/* the window ending one word before */
		assert_string_equal(a.text[a.win[(p - 1) * SPAM_WINDOW_MASKS + 7]],
				    "Subject*Heute+Abend+war+ich");
	}
	assert_true(found);
	/* URL pieces: level 0, in no window */
	k = spam_tokens_find(&a, spam_token_hash("Url*kino", 8));
	assert_true(k >= 0);
	assert_int_equal(a.level[k], 0);
	/* OSB has no words alone: no windows */
	spam_tokens_collect(&o, msg, strlen(msg), SPAM_TOK_OSB, SPAM_COLLECT_WINDOWS);
	assert_null(o.win);
	spam_tokens_free(&a);
	spam_tokens_free(&b);
	spam_tokens_free(&o);
}

static struct seen msg_tokens;

static void tokenize_msg(const char *m)
{
	clear(&msg_tokens);
	spam_tokenize_message(m, strlen(m), SPAM_TOK_SBPH, record, &msg_tokens);
}

static void test_headers_named(void **state)
{
	(void)state;
	tokenize_msg("Subject: Free money now\r\nX-Spam-Status: Yes, score=9\r\n"
		     "Received: from mx.example.net (192.0.2.7)\r\n\tby us\r\n\r\nhi\r\n");
	assert_true(has(&msg_tokens, "Subject*Free"));
	assert_true(has(&msg_tokens, "Subject*Free+money"));
	assert_true(has(&msg_tokens, "Subject*Free+#+now"));
	assert_true(has(&msg_tokens, "Received*mx.example.net"));
	assert_true(has(&msg_tokens, "Received*192.0.2.7"));
	assert_true(has(&msg_tokens, "Received*us"));	     /* folded line */
	assert_false(has(&msg_tokens, "X-Spam-Status*Yes")); /* verdicts do not teach */
	assert_true(has(&msg_tokens, "hi"));
	assert_false(has(&msg_tokens, "Free")); /* header words keep their field */
}

static void test_decoding(void **state)
{
	(void)state;
	/* RFC 2047 in a header, base64 and quoted-printable bodies, Latin-1 to UTF-8 */
	tokenize_msg("Subject: =?UTF-8?B?S2lubyBhYmVuZA==?=\r\n"
		     "MIME-Version: 1.0\r\n"
		     "Content-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n"
		     "preamble\r\n--XX\r\n"
		     "Content-Type: text/plain; charset=iso-8859-1\r\n"
		     "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
		     "Wir haben gel=E4chelt und ge=\r\nlacht\r\n"
		     "--XX\r\n"
		     "Content-Type: text/plain; charset=utf-8\r\n"
		     "Content-Transfer-Encoding: base64\r\n\r\n"
		     "RnJldW5kaW4gaW0gS2lubw==\r\n"
		     "--XX\r\n"
		     "Content-Type: application/octet-stream; name=\"blob.bin\"\r\n"
		     "Content-Transfer-Encoding: base64\r\n"
		     "Content-Disposition: attachment; filename=\"blob.bin\"\r\n\r\n"
		     "c2VjcmV0d29yZA==\r\n"
		     "--XX--\r\n");
	assert_true(has(&msg_tokens, "Subject*Kino"));
	assert_true(has(&msg_tokens, "Subject*Kino+abend"));
	assert_true(has(&msg_tokens, "gel\xc3\xa4"
				     "chelt"));
	assert_true(has(&msg_tokens, "gelacht")); /* soft line break joined */
	assert_true(has(&msg_tokens, "Freundin+im+Kino"));
	assert_true(has(&msg_tokens, "Content-Type*application"));
	assert_false(has(&msg_tokens, "secretword")); /* binary attachment skipped */
	assert_false(has(&msg_tokens, "c2VjcmV0d29yZA"));
}

static void test_html_and_urls(void **state)
{
	(void)state;
	tokenize_msg("Content-Type: text/html\r\n\r\n"
		     "<html><body><b>Cheap</b> pills<!-- hidden words --> "
		     "<a href=\"http://evil.example.com/buy\">here</a>&nbsp;now</body></html>\r\n");
	assert_true(has(&msg_tokens, "Cheap+pills"));
	assert_true(has(&msg_tokens, "Url*evil"));
	assert_true(has(&msg_tokens, "Url*buy"));
	assert_true(has(&msg_tokens, "here+now"));
	assert_false(has(&msg_tokens, "hidden"));
	assert_false(has(&msg_tokens, "b"));
	assert_false(has(&msg_tokens, "nbsp"));
	/* the words inside long tags: each alone, outside the text's windows */
	assert_true(has(&msg_tokens, "Html*a"));
	assert_true(has(&msg_tokens, "Html*href"));
	tokenize_msg("Content-Type: text/html\r\n\r\n"
		     "Dear <FONT color=\"#0000ff\" size=2>Hello world</FONT> bye\r\n");
	assert_true(has(&msg_tokens, "Html*FONT"));
	assert_true(has(&msg_tokens, "Html*color"));
	assert_true(has(&msg_tokens, "Html*0000ff"));
	assert_true(has(&msg_tokens, "Html*size"));
	assert_true(has(&msg_tokens, "Html*2"));
	assert_true(has(&msg_tokens, "Dear+Hello"));
	assert_true(has(&msg_tokens, "Hello+world"));
	assert_true(has(&msg_tokens, "Dear+#+world"));
	assert_false(has(&msg_tokens, "color"));
	assert_false(has(&msg_tokens, "0000ff+Hello"));
	assert_false(has(&msg_tokens, "Html*color+0000ff"));
	clear(&msg_tokens);
}

static void test_long_words_dropped_and_garbage(void **state)
{
	(void)state;
	tokenize_msg("Subject: x\r\n\r\nshort aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa end\r\n");
	assert_true(has(&msg_tokens, "short+end"));
	/* malformed input never crashes: no header end, unterminated boundary */
	tokenize_msg(
	    "Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\nContent-Type: text/plain");
	tokenize_msg("=?utf-8?B?");
	tokenize_msg("");
	clear(&msg_tokens);
}

static void tokenize_osb4(const char *m)
{
	clear(&msg_tokens);
	spam_tokenize_message(m, strlen(m), SPAM_TOK_OSB4, record, &msg_tokens);
}

/* osb4, the default: the words and their OSB pairs (never three words), the
 * byte 4-grams of the start, URL hosts and domains, the MIME shape, hops. */
static void test_osb4_features(void **state)
{
	(void)state;
	tokenize_osb4(
	    "From mbox-line\r\n"
	    "Received: from a.example by b.example\r\n"
	    "Received: from c.example by a.example\r\n"
	    "X-Spam-Status: Yes\r\n"
	    "Subject: Heute Abend war ich\r\n"
	    "Content-Type: multipart/alternative; boundary=b\r\n\r\n"
	    "--b\r\nContent-Type: text/plain\r\n\r\nsee https://WWW.Shop.example.co.uk/x?y now\r\n"
	    "--b\r\nContent-Type: text/html\r\n\r\n<p>hi</p>\r\n--b--\r\n");
	assert_true(has(&msg_tokens, "Subject*ich"));
	assert_true(has(&msg_tokens, "Subject*war+ich"));
	assert_true(has(&msg_tokens, "Subject*Abend+#+ich"));
	assert_true(has(&msg_tokens, "Subject*Heute+#+#+ich"));
	assert_false(has(&msg_tokens, "Subject*Abend+war+ich")); /* SBPH's, not OSB's */
	assert_true(has(&msg_tokens, "UrlHost*www.shop.example.co.uk"));
	assert_true(has(&msg_tokens, "UrlDom*example.co.uk"));
	assert_true(has(&msg_tokens, "Mime*0multipart/alternative,1text/plain,1text/html"));
	assert_true(has(&msg_tokens, "Hops*2"));
	assert_true(has(&msg_tokens, "G*Rece"));
	assert_false(has(&msg_tokens, "G*mbox")); /* the mbox line is not the message */
	assert_false(has(&msg_tokens, "G*Spam")); /* nor other filters' verdicts */
	/* the same words give the same hashes as the set's */
	struct spam_tokens set;
	const char m[] = "Subject: x\r\n\r\nHeute Abend\r\n";
	spam_tokens_collect(&set, m, strlen(m), SPAM_TOK_OSB4, SPAM_COLLECT_TEXT);
	assert_true(
	    spam_tokens_find(&set, spam_token_hash_kind(SPAM_TOK_OSB4, "Heute+Abend", 11)) >= 0);
	assert_true(spam_tokens_find(&set, spam_token_hash("Heute+Abend", 11)) < 0);
	spam_tokens_free(&set);
	clear(&msg_tokens);
}

/* Real, messy mail: every message of the corpus (whatever is there; none of
 * them in particular) tokenizes the same twice, into a bounded set, and the
 * kinds of mess it holds are handled: 8-bit header bytes keep their field
 * name, base64 and quoted-printable text is decoded (words appear that are
 * not in the raw bytes), HTML-only mail gives no token with a '<'. */
static const char *corpus_dir(void)
{
	const char *c = getenv("MAILKEEP_CORPUS");
	return c ? c : "/work/shared/corpus/spamassassin";
}

struct corpus_stats {
	unsigned messages, eightbit, decoded, html_only, broken;
};

static int raw_has(const char *data, size_t len, const char *text)
{
	return memmem(data, len, text, strlen(text)) != NULL;
}

static void check_one(const char *data, size_t len, struct corpus_stats *cs)
{
	struct spam_tokens a, b;
	spam_tokens_collect(&a, data, len, SPAM_TOK_OSB4, SPAM_COLLECT_TEXT);
	spam_tokens_collect(&b, data, len, SPAM_TOK_OSB4, 0);
	assert_int_equal(a.n, b.n);
	assert_memory_equal(a.hash, b.hash, a.n * sizeof(*a.hash));
	for (size_t i = 1; i < a.n; i++)
		assert_true(a.hash[i - 1] < a.hash[i]);
	/* the bound: 6 per word of text read, the grams, and a few more */
	assert_true(a.n <= 6 * (SPAM_TEXT_MAX + SPAM_HEADER_MAX) / 2 + SPAM_GRAM_BYTES + 64);
	const char *eoh = memmem(data, len, "\n\n", 2);
	const char *eoh2 = memmem(data, len, "\r\n\r\n", 4);
	size_t hlen = eoh ? (size_t)(eoh - data) : eoh2 ? (size_t)(eoh2 - data) : len;
	int eight = 0;
	for (size_t i = 0; i < hlen; i++)
		eight |= (unsigned char)data[i] >= 0x80;
	int html_only = 0, decoded = 0;
	for (size_t i = 0; i < a.n; i++) {
		const char *t = a.text[i];
		if (t == NULL)
			continue;
		if (eight && strncmp(t, "Subject*", 8) == 0)
			eight = 2;
		/* a body word (no field, no prefix) that the raw bytes do not hold */
		if (strchr(t, '*') == NULL && strchr(t, '+') == NULL && strlen(t) >= 6 &&
		    !raw_has(data, len, t))
			decoded = 1;
	}
	if (eight == 2)
		cs->eightbit++;
	if (decoded && (raw_has(data, len, "base64") || raw_has(data, len, "quoted-printable")))
		cs->decoded++;
	if (raw_has(data, hlen, "Content-Type: text/html") && !raw_has(data, len, "multipart")) {
		html_only = 1;
		for (size_t i = 0; i < a.n; i++)
			if (a.text[i] && strncmp(a.text[i], "G*", 2) != 0 &&
			    strncmp(a.text[i], "Mime*", 5) != 0)
				assert_null(strchr(a.text[i], '<'));
		cs->html_only++;
	}
	(void)html_only;
	if (raw_has(data, hlen, "multipart") && !raw_has(data, len, "--\n") &&
	    !raw_has(data, len, "--\r\n"))
		cs->broken++; /* no closing delimiter anywhere */
	cs->messages++;
	spam_tokens_free(&a);
	spam_tokens_free(&b);
}

static void test_corpus_messy_mail(void **state)
{
	(void)state;
	struct corpus_stats cs = {0};
	const char *sub[2] = {"ham", "spam"};
	for (int c = 0; c < 2; c++) {
		char dir[1024];
		snprintf(dir, sizeof(dir), "%s/%s", corpus_dir(), sub[c]);
		DIR *d = opendir(dir);
		if (d == NULL) {
			print_message("no corpus at %s (set MAILKEEP_CORPUS)\n", corpus_dir());
			skip();
		}
		struct dirent *e;
		unsigned k = 0;
		while ((e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.' || k++ % 3 != 0) /* a third of them: ASan is slow */
				continue;
			char path[2048];
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			FILE *f = fopen(path, "rb");
			assert_non_null(f);
			static char buf[4 << 20];
			size_t len = fread(buf, 1, sizeof(buf), f);
			fclose(f);
			check_one(buf, len, &cs);
		}
		closedir(d);
	}
	print_message(
	    "corpus: %u messages, %u with 8-bit Subject bytes, %u with decoded text, %u HTML-only, "
	    "%u multipart without a closing delimiter\n",
	    cs.messages, cs.eightbit, cs.decoded, cs.html_only, cs.broken);
	/* the corpus holds each kind of mess; each was met and handled */
	assert_true(cs.messages > 100);
	assert_true(cs.eightbit > 0);
	assert_true(cs.decoded > 0);
	assert_true(cs.html_only > 0);
}

/* The CRC-64, 8 bytes a step, is DSPAM's byte-at-a-time CRC-64 on every
 * length (what sbph and osb learned before stays comparable). */
static uint64_t crc64_ref(const unsigned char *p, size_t n)
{
	static uint64_t t[256];
	static int init;
	if (!init) {
		for (int i = 0; i < 256; i++) {
			uint64_t x = (uint64_t)i;
			for (int j = 0; j < 8; j++)
				x = (x & 1) ? (x >> 1) ^ 0xd800000000000000ULL : x >> 1;
			t[i] = x;
		}
		init = 1;
	}
	uint64_t c = 0;
	for (size_t i = 0; i < n; i++)
		c = t[(c ^ p[i]) & 0xff] ^ (c >> 8);
	return c;
}

static void test_crc64_is_dspams(void **state)
{
	(void)state;
	unsigned char b[80];
	uint64_t x = 88172645463325252ULL;
	for (int k = 0; k < 20000; k++) {
		size_t n = (size_t)k % 75;
		for (size_t i = 0; i < n; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			b[i] = (unsigned char)x;
		}
		assert_true(spam_token_hash(b, n) == crc64_ref(b, n));
	}
	assert_true(spam_token_hash("Heute+Abend+war+ich+mit", 23) ==
		    crc64_ref((const unsigned char *)"Heute+Abend+war+ich+mit", 23));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sbph_seed_sentence),
	    cmocka_unit_test(test_osb_pairs_only),
	    cmocka_unit_test(test_deterministic),
	    cmocka_unit_test(test_headers_named),
	    cmocka_unit_test(test_windows),
	    cmocka_unit_test(test_decoding),
	    cmocka_unit_test(test_html_and_urls),
	    cmocka_unit_test(test_long_words_dropped_and_garbage),
	    cmocka_unit_test(test_osb4_features),
	    cmocka_unit_test(test_corpus_messy_mail),
	    cmocka_unit_test(test_crc64_is_dspams),
	};
	return cmocka_run_group_tests_name("spam-token", tests, NULL, NULL);
}
