/* inodes — stable inode numbers (see inodes.h). */
#include "fs/inodes.h"

#include <string.h>

#define KIND_SHIFT 56
#define MSG_BIT (1ULL << 63)

uint64_t fsi_user(uint32_t user_id)
{
	return (uint64_t)FSI_USER << KIND_SHIFT | user_id;
}

uint64_t fsi_mbox(uint32_t mbid)
{
	return (uint64_t)FSI_MBOX << KIND_SHIFT | mbid;
}

uint64_t fsi_sub(uint32_t mbid, enum fsi_sub sub)
{
	return (uint64_t)FSI_SUB << KIND_SHIFT | (uint64_t)sub << 32 | mbid;
}

uint64_t fsi_msg(uint32_t mbid, uint32_t uid)
{
	if (mbid >= (1U << 31))
		return 0;
	return MSG_BIT | (uint64_t)mbid << 32 | uid;
}

uint64_t fsi_pending(uint64_t serial)
{
	return (uint64_t)FSI_PENDING << KIND_SHIFT | (serial & ((1ULL << KIND_SHIFT) - 1));
}

uint64_t fsi_plain(uint64_t backing_ino)
{
	return (uint64_t)FSI_PLAIN << KIND_SHIFT | (backing_ino & ((1ULL << KIND_SHIFT) - 1));
}

struct fsi fsi_decode(uint64_t ino)
{
	struct fsi f;
	memset(&f, 0, sizeof(f));
	if (ino == FSI_ROOT_INO) {
		f.kind = FSI_ROOT;
		return f;
	}
	if (ino & MSG_BIT) {
		f.kind = FSI_MSG;
		f.id = (uint32_t)((ino >> 32) & 0x7fffffffU);
		f.uid = (uint32_t)ino;
		return f;
	}
	switch (ino >> KIND_SHIFT) {
	case FSI_USER:
	case FSI_MBOX:
		if ((ino >> 32) & 0xffffffULL)
			break;
		f.kind = (enum fsi_kind)(ino >> KIND_SHIFT);
		f.id = (uint32_t)ino;
		break;
	case FSI_SUB: {
		uint64_t sub = (ino >> 32) & 0xffffffULL;
		if (sub > FSI_TMP)
			break;
		f.kind = FSI_SUB;
		f.sub = (enum fsi_sub)sub;
		f.id = (uint32_t)ino;
		break;
	}
	case FSI_PLAIN:
	case FSI_PENDING:
		f.kind = (enum fsi_kind)(ino >> KIND_SHIFT);
		f.serial = ino & ((1ULL << KIND_SHIFT) - 1);
		break;
	default:
		break;
	}
	return f;
}

const char *fsi_sub_name(enum fsi_sub sub)
{
	static const char *const names[] = {"cur", "new", "tmp"};
	return sub <= FSI_TMP ? names[sub] : "?";
}

int fsi_sub_parse(const char *name)
{
	if (strcmp(name, "cur") == 0)
		return FSI_CUR;
	if (strcmp(name, "new") == 0)
		return FSI_NEW;
	if (strcmp(name, "tmp") == 0)
		return FSI_TMP;
	return -1;
}
