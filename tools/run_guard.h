/* run_guard — `mailkeep run` and the processes of its instance it did not
 * start: a live supervisor (refused), services left behind by a dead one
 * (stopped), ports held by other programs (refused, named), a stale mount
 * (detached). See tools/run_guard.c. */
#ifndef MK_TOOLS_RUN_GUARD_H
#define MK_TOOLS_RUN_GUARD_H

#include <stddef.h>
#include <sys/types.h>

#include "lib/config.h"

/* Before `run` starts its services (conf is the configuration file's path,
 * mount_point the mount's):
 * returns 0 when the way is clear (leftover services of this instance were
 * stopped), or -1 with a sentence for the user in err. */
int run_guard_start(struct config *cfg, const char *conf, const char *rundir,
		    const char *mount_point, char *err, size_t errsize);
/* Remembers (or forgets) the pid of a service `run` started, in
 * $run_directory/run.<bin>.pid, so that a later `run` finds it. */
void run_guard_record(const char *rundir, const char *bin, pid_t pid);
void run_guard_forget(const char *rundir, const char *bin);
/* 1 if a FUSE file system is mounted on mountpoint. */
int run_guard_mounted(const char *mountpoint);
/* Detaches it (umount2 MNT_DETACH as root, fusermount3 -u -z otherwise). Returns 0 or -1. */
int run_guard_unmount(const char *mountpoint);

#endif
