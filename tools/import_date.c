/* import_date — a message's Date header field as an arrival date (see
 * import_date.h). Only the header is read, at most 64 KB of it. */
#include "tools/import_date.h"

#include <libetpan/libetpan.h>
#include <string.h>
#include <strings.h>

#define HEADER_MAX 65536
#define VALUE_MAX 512

/* Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* The unfolded value of the first Date: field into out; 0 or -1. */
static int find_date(const char *msg, size_t len, char *out, size_t size)
{
	size_t end = len < HEADER_MAX ? len : HEADER_MAX, i = 0;

	while (i < end) {
		const char *line = msg + i;
		const char *nl = memchr(line, '\n', end - i);
		size_t n = nl != NULL ? (size_t)(nl - line) : end - i;
		if (n == 0 || (n == 1 && line[0] == '\r'))
			return -1; /* the end of the header */
		if (n > 5 && strncasecmp(line, "Date:", 5) == 0) {
			size_t o = 0;
			const char *p = line + 5;
			for (;;) {
				for (; p < line + n && o + 1 < size; p++)
					if (*p != '\r')
						out[o++] = *p == '\t' ? ' ' : *p;
				i += n + 1;
				/* a folded continuation starts with white space */
				if (nl == NULL || i >= end || (msg[i] != ' ' && msg[i] != '\t'))
					break;
				line = p = msg + i;
				nl = memchr(line, '\n', end - i);
				n = nl != NULL ? (size_t)(nl - line) : end - i;
			}
			out[o] = '\0';
			return 0;
		}
		i += n + 1;
	}
	return -1;
}

int import_header_date(const char *msg, size_t len, int64_t now, int64_t *t_r)
{
	char v[VALUE_MAX];
	struct mailimf_date_time *dt = NULL;
	size_t idx = 0;
	int rc = -1;

	if (find_date(msg, len, v, sizeof(v)) < 0)
		return -1;
	if (mailimf_date_time_parse(v, strlen(v), &idx, &dt) != MAILIMF_NO_ERROR || dt == NULL)
		return -1;
	if (dt->dt_month >= 1 && dt->dt_month <= 12 && dt->dt_day >= 1 && dt->dt_day <= 31 &&
	    dt->dt_hour >= 0 && dt->dt_hour <= 23 && dt->dt_min >= 0 && dt->dt_min <= 59 &&
	    dt->dt_sec >= 0 && dt->dt_sec <= 60 && dt->dt_year >= 1970 && dt->dt_year < 10000) {
		/* zone: +0130 is 130 */
		int zone = dt->dt_zone, zsign = zone < 0 ? -1 : 1;
		int64_t off = zsign * ((zone * zsign) / 100 * 3600 + (zone * zsign) % 100 * 60);
		int64_t t = days_from_civil(dt->dt_year, dt->dt_month, dt->dt_day) * 86400 +
			    dt->dt_hour * 3600 + dt->dt_min * 60 + dt->dt_sec - off;
		if (t >= 0 && t <= now + 86400) {
			*t_r = t;
			rc = 0;
		}
	}
	mailimf_date_time_free(dt);
	return rc;
}
