/* fuzz-sieve — index/sieve*.c on arbitrary bytes: the input is a script,
 * optionally followed by "\0\0" and a message. A script that compiles is
 * run on the message (or a fixed one): the parser, the checker, the
 * interpreter, the matchers, the regex engine and the message reader must
 * stay inside their inputs and bounds, and every error must be a sentence.
 * With the first byte 'R', the rest is a regular expression run on itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "index/sieve.h"
#include "index/sieve_priv.h"

static const char fixed[] =
    "From: Alice <alice+x@example.com>\r\nTo: bob@example.org\r\n"
    "Subject: =?utf-8?q?hello?= world\r\nDate: Tue, 1 Apr 1997 09:06:31 -0800\r\n"
    "Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n"
    "Content-Type: text/plain\r\n\r\nbody text\r\n--b--\r\n";

static int exists(void *ctx, const char *name)
{
	(void)ctx;
	return name[0] == 'I';
}

static int load(void *ctx, int global, const char *name, const char **text_r, size_t *len_r)
{
	(void)ctx;
	(void)global;
	if (strcmp(name, "inc") != 0)
		return -1;
	*text_r = "require [\"fileinto\", \"include\"]; fileinto \"x\"; include \"inc\";";
	*len_r = strlen(*text_r);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	if (size > 0 && data[0] == 'R') {
		char err[200];
		uint64_t budget = 1000000;
		long caps[20];
		struct sv_regex *re =
		    sv_regex_compile(text + 1, size - 1, size & 1, err, sizeof(err));
		if (re == NULL) {
			if (err[0] == '\0')
				abort();
			return 0;
		}
		(void)sv_regex_exec(re, text + 1, size - 1, caps, &budget);
		sv_regex_free(&re);
		return 0;
	}
	size_t slen = size;
	const char *msg = fixed;
	size_t mlen = sizeof(fixed) - 1;
	for (size_t i = 0; i + 1 < size; i++)
		if (data[i] == 0 && data[i + 1] == 0) {
			slen = i;
			msg = text + i + 2;
			mlen = size - i - 2;
			break;
		}
	struct sieve_script *s;
	struct sieve_error err;
	if (sieve_compile(text, slen, 0, &s, &err) < 0) {
		if (err.msg[0] == '\0')
			abort();
		return 0;
	}
	struct sieve_msg m = {.data = msg,
			      .len = mlen,
			      .env_from = "a@b.c",
			      .env_to = "bob+d@e.f",
			      .user = "bob",
			      .spam_percent = 50,
			      .now = 1700000000};
	struct sieve_env env = {.mailbox_exists = exists, .load = load};
	struct sieve_result res;
	if (sieve_execute(&s, 1, &m, &env, &res) < 0 && res.err.msg[0] == '\0')
		abort();
	if (res.n > SIEVE_MAX_ACTIONS)
		abort();
	sieve_result_free(&res);
	sieve_script_free(&s);
	return 0;
}
