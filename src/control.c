/* SPDX-License-Identifier: MIT */
#include "jada/control.h"
#include "jada/log.h"
#include "jada/util.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* Messages are single words; anything longer is not ours. */
#define CONTROL_MESSAGE_MAX 64

struct control_listener {
        control_fn handler;
        void *userdata;
};

static int socket_address(const char *state_dir, struct sockaddr_un *sa, socklen_t *len)
{
        _cleanup_free_ char *path = xasprintf("%s/%s", state_dir, CONTROL_SOCKET_NAME);

        memset(sa, 0, sizeof *sa);
        sa->sun_family = AF_UNIX;
        if (strlen(path) >= sizeof sa->sun_path)
                return -ENAMETOOLONG;
        strcpy(sa->sun_path, path);
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
        return 0;
}

static int on_control(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        struct control_listener *l = userdata;

        /* Take everything queued: several `task add`s make one wake. */
        for (unsigned i = 0; i < 64; i++) {
                char buf[CONTROL_MESSAGE_MAX + 1];
                ssize_t n = recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT | MSG_TRUNC);

                if (n < 0) {
                        if (errno != EAGAIN && errno != EINTR)
                                log_warning_errno(errno, "control socket");
                        break;
                }
                if (n == 0 || (size_t)n > sizeof buf - 1) {
                        log_debug("control socket: ignored a message of %zd bytes", n);
                        continue;
                }
                buf[n] = '\0';
                buf[strcspn(buf, "\n")] = '\0';
                l->handler(buf, l->userdata);
        }
        return 0;
}

static void listener_destroy(void *userdata)
{
        free(userdata);
}

int control_listen(sd_event *event, const char *state_dir, control_fn handler, void *userdata,
                   sd_event_source **ret)
{
        struct control_listener *l;
        struct sockaddr_un sa;
        socklen_t len;
        int fd, r;

        r = socket_address(state_dir, &sa, &len);
        if (r < 0)
                return log_warning_errno(r, "control socket path in %s", state_dir);
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return log_warning_errno(errno, "control socket");
        /* A socket file left by a daemon that died; the daemon lock makes
         * sure no live daemon owns it. */
        (void)unlink(sa.sun_path);
        if (bind(fd, (struct sockaddr *)&sa, len) < 0) {
                r = log_warning_errno(errno, "cannot bind %s", sa.sun_path);
                close(fd);
                return r;
        }
        (void)chmod(sa.sun_path, 0600);

        l = xcalloc(1, sizeof *l);
        l->handler = handler;
        l->userdata = userdata;
        r = sd_event_add_io(event, ret, fd, EPOLLIN, on_control, l);
        if (r < 0) {
                free(l);
                close(fd);
                unlink(sa.sun_path);
                return log_warning_errno(r, "control socket");
        }
        sd_event_source_set_io_fd_own(*ret, true);
        sd_event_source_set_destroy_callback(*ret, listener_destroy);
        return 0;
}

void control_close(sd_event_source *source, const char *state_dir)
{
        struct sockaddr_un sa;
        socklen_t len;

        if (!source)
                return;
        sd_event_source_disable_unref(source);
        if (socket_address(state_dir, &sa, &len) == 0)
                (void)unlink(sa.sun_path);
}

int control_send(const char *state_dir, const char *message)
{
        struct sockaddr_un sa;
        socklen_t len;
        int fd, r;

        r = socket_address(state_dir, &sa, &len);
        if (r < 0)
                return r;
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        r = sendto(fd, message, strlen(message), MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&sa, len) < 0
                ? -errno : 0;
        close(fd);
        return r;
}
