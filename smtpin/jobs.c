/* jobs — a small pool of threads for the work that blocks: durable commits
 * (store_deliver waits for the fsync, and many waiting at once is what lets
 * the store share one commit between sessions), directory lookups, password
 * checks. A finished job is queued back and an event wakes the loop thread,
 * which runs its done function (libevent is set up with evthread_use_pthreads
 * so event_active may be called from a pool thread). */
#include <event2/event.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "lib/log.h"
#include "lib/xmalloc.h"
#include "smtpin/smtpin.h"

struct job {
	job_fn *work, *done;
	void *arg;
	struct job *next;
};

struct jobs {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct job *todo, **todo_tail;
	struct job *done, **done_tail;
	struct event *wake;
	pthread_t *threads;
	int nthreads;
	int stop;
	int paused;  /* jobs_pause: no job is started */
	int running; /* jobs being worked on now */
	pthread_cond_t idle;
};

static void *worker(void *arg)
{
	struct jobs *j = arg;

	pthread_mutex_lock(&j->lock);
	for (;;) {
		while ((j->todo == NULL || j->paused) && !j->stop)
			pthread_cond_wait(&j->cond, &j->lock);
		if (j->todo == NULL)
			break;
		j->running++;
		struct job *job = j->todo;
		j->todo = job->next;
		if (j->todo == NULL)
			j->todo_tail = &j->todo;
		pthread_mutex_unlock(&j->lock);

		job->work(job->arg);

		pthread_mutex_lock(&j->lock);
		if (--j->running == 0)
			pthread_cond_broadcast(&j->idle);
		job->next = NULL;
		int was_empty = j->done == NULL;
		*j->done_tail = job;
		j->done_tail = &job->next;
		if (was_empty)
			event_active(j->wake, EV_READ, 0);
	}
	pthread_mutex_unlock(&j->lock);
	return NULL;
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct jobs *j = arg;
	struct job *list;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&j->lock);
	list = j->done;
	j->done = NULL;
	j->done_tail = &j->done;
	pthread_mutex_unlock(&j->lock);
	while (list != NULL) {
		struct job *next = list->next;
		list->done(list->arg);
		free(list);
		list = next;
	}
}

int jobs_start(struct server *srv, int nthreads, char *err, size_t errsize)
{
	struct jobs *j = xcalloc(1, sizeof(*j));

	pthread_mutex_init(&j->lock, NULL);
	pthread_cond_init(&j->cond, NULL);
	pthread_cond_init(&j->idle, NULL);
	j->todo_tail = &j->todo;
	j->done_tail = &j->done;
	j->wake = event_new(srv->base, -1, 0, on_wake, j);
	if (j->wake == NULL)
		log_fatal("out of memory (event_new)");
	j->threads = xcalloc((size_t)nthreads, sizeof(pthread_t));
	for (int i = 0; i < nthreads; i++) {
		if (pthread_create(&j->threads[i], NULL, worker, j) != 0) {
			snprintf(err, errsize, "cannot start worker thread %d", i);
			j->nthreads = i;
			srv->jobs = j;
			return -1;
		}
	}
	j->nthreads = nthreads;
	srv->jobs = j;
	return 0;
}

void jobs_stop(struct server *srv)
{
	struct jobs *j = srv->jobs;

	if (j == NULL)
		return;
	pthread_mutex_lock(&j->lock);
	j->stop = 1;
	pthread_cond_broadcast(&j->cond);
	pthread_mutex_unlock(&j->lock);
	for (int i = 0; i < j->nthreads; i++)
		pthread_join(j->threads[i], NULL);
	on_wake(-1, 0, j);
	event_free(j->wake);
	free(j->threads);
	pthread_mutex_destroy(&j->lock);
	pthread_cond_destroy(&j->cond);
	pthread_cond_destroy(&j->idle);
	free(j);
	srv->jobs = NULL;
}

void jobs_pause(struct server *srv)
{
	struct jobs *j = srv->jobs;

	pthread_mutex_lock(&j->lock);
	j->paused = 1;
	while (j->running > 0)
		pthread_cond_wait(&j->idle, &j->lock);
	pthread_mutex_unlock(&j->lock);
}

void jobs_resume(struct server *srv)
{
	struct jobs *j = srv->jobs;

	pthread_mutex_lock(&j->lock);
	j->paused = 0;
	pthread_cond_broadcast(&j->cond);
	pthread_mutex_unlock(&j->lock);
}

void job_submit(struct server *srv, job_fn *work, job_fn *done, void *arg)
{
	struct jobs *j = srv->jobs;
	struct job *job = xcalloc(1, sizeof(*job));

	job->work = work;
	job->done = done;
	job->arg = arg;
	pthread_mutex_lock(&j->lock);
	*j->todo_tail = job;
	j->todo_tail = &job->next;
	pthread_cond_signal(&j->cond);
	pthread_mutex_unlock(&j->lock);
}
