/* Preloaded into a DDP job by the tests: each time a gloo worker thread wakes a waiter (as it
 * does when a collective completes), it then loses the CPU for STARVE_US microseconds, as it may
 * on a busy machine. That opens, every time, the window in which a torch teardown race
 * deadlocks: the gloo thread still has to drop a finished work item, which needs the GIL, while
 * the main thread destroys the process group holding the GIL. Each delay appends a line to the
 * file named by STARVE_LOG, so that a test can tell that the delays happened. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int pthread_cond_broadcast(pthread_cond_t* cond) {
    static int (*next)(pthread_cond_t*);
    if (!next) next = (int (*)(pthread_cond_t*))dlsym(RTLD_NEXT, "pthread_cond_broadcast");
    int result = next(cond);
    char name[16] = {0};
    pthread_getname_np(pthread_self(), name, sizeof name);
    if (strcmp(name, "pt_gloo_runloop") == 0) {
        const char* log = getenv("STARVE_LOG");
        if (log) {
            int fd = open(log, O_WRONLY | O_APPEND | O_CREAT, 0644);
            if (fd >= 0) {
                (void)!write(fd, "delayed\n", 8);
                close(fd);
            }
        }
        const char* us = getenv("STARVE_US");
        usleep(us ? (useconds_t)atoi(us) : 100000);
    }
    return result;
}
