/* etpan_check — test helper: libetpan's IMAP client fetches every message of
 * a mailbox (UID, RFC822.SIZE, ENVELOPE, BODYSTRUCTURE, BODY.PEEK[]) in
 * batches and prints one line per message:
 *   UID SIZE SHA256-OF-BODY[] PARTS MESSAGE-ID-PRESENT
 * A response libetpan cannot parse makes the fetch fail: exit 1.
 *   etpan_check PORT USER PASSWORD MAILBOX COUNT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libetpan/libetpan.h>
#include <openssl/sha.h>

static int count_parts(struct mailimap_body *b)
{
	if (b == NULL)
		return -1000;
	if (b->bd_type == MAILIMAP_BODY_1PART)
		return 1;
	int n = 0;
	for (clistiter *it = clist_begin(b->bd_data.bd_body_mpart->bd_list); it; it = clist_next(it))
		n += count_parts(clist_content(it));
	return n;
}

int main(int argc, char **argv)
{
	if (argc != 6)
		return 2;
	mailimap *imap = mailimap_new(0, NULL);
	if (mailimap_socket_connect(imap, "127.0.0.1", (uint16_t)atoi(argv[1])) != MAILIMAP_NO_ERROR_NON_AUTHENTICATED ||
	    mailimap_login(imap, argv[2], argv[3]) != MAILIMAP_NO_ERROR ||
	    mailimap_select(imap, argv[4]) != MAILIMAP_NO_ERROR) {
		fprintf(stderr, "connect/login/select failed\n");
		return 1;
	}
	uint32_t count = (uint32_t)strtoul(argv[5], NULL, 10);
	for (uint32_t first = 1; first <= count; first += 200) {
		uint32_t last = first + 199 > count ? count : first + 199;
		struct mailimap_set *set = mailimap_set_new_interval(first, last);
		struct mailimap_fetch_type *ft = mailimap_fetch_type_new_fetch_att_list_empty();
		mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_uid());
		mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_rfc822_size());
		mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_envelope());
		mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_bodystructure());
		mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_body_peek_section(mailimap_section_new(NULL)));
		clist *result = NULL;
		int r = mailimap_fetch(imap, set, ft, &result);
		mailimap_fetch_type_free(ft);
		mailimap_set_free(set);
		if (r != MAILIMAP_NO_ERROR) {
			fprintf(stderr, "fetch %u:%u failed: %d\n", first, last, r);
			return 1;
		}
		for (clistiter *it = clist_begin(result); it; it = clist_next(it)) {
			struct mailimap_msg_att *ma = clist_content(it);
			uint32_t uid = 0, size = 0;
			int parts = -1, env = 0;
			unsigned char h[SHA256_DIGEST_LENGTH];
			char hex[2 * SHA256_DIGEST_LENGTH + 1] = "-";
			for (clistiter *a = clist_begin(ma->att_list); a; a = clist_next(a)) {
				struct mailimap_msg_att_item *item = clist_content(a);
				if (item->att_type != MAILIMAP_MSG_ATT_ITEM_STATIC)
					continue;
				struct mailimap_msg_att_static *st = item->att_data.att_static;
				switch (st->att_type) {
				case MAILIMAP_MSG_ATT_UID: uid = st->att_data.att_uid; break;
				case MAILIMAP_MSG_ATT_RFC822_SIZE: size = st->att_data.att_rfc822_size; break;
				case MAILIMAP_MSG_ATT_ENVELOPE:
					env = st->att_data.att_env != NULL && st->att_data.att_env->env_message_id != NULL;
					break;
				case MAILIMAP_MSG_ATT_BODYSTRUCTURE: parts = count_parts(st->att_data.att_bodystructure); break;
				case MAILIMAP_MSG_ATT_BODY_SECTION: {
					struct mailimap_msg_att_body_section *bs = st->att_data.att_body_section;
					SHA256((const unsigned char *)(bs->sec_body_part ? bs->sec_body_part : ""), bs->sec_length, h);
					for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
						snprintf(hex + 2 * i, 3, "%02x", h[i]);
					break;
				}
				}
			}
			printf("%u %u %s %d %d\n", uid, size, hex, parts, env);
		}
		mailimap_fetch_list_free(result);
	}
	mailimap_logout(imap);
	mailimap_free(imap);
	return 0;
}
