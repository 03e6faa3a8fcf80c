/* SPDX-License-Identifier: MIT */
/* The unit tests' way to run a fake server of tests/fake/ (python3, on
 * 127.0.0.1 with random ports): started in its own process, which prints
 * each port on a line of its own; killed with the test (PR_SET_PDEATHSIG)
 * should the test crash. */
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FAKE_SERVER_START_USEC (10 * 1000000ULL)

static inline uint64_t fake_server_now(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000;
}

/* One line of at most size-1 bytes from fd, waiting up to deadline. */
static inline bool fake_server_read_line(int fd, char *buf, size_t size, uint64_t deadline)
{
        size_t n = 0;

        while (n + 1 < size) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                uint64_t now = fake_server_now();

                if (now >= deadline || poll(&p, 1, (int)((deadline - now) / 1000) + 1) <= 0)
                        return false;
                if (read(fd, buf + n, 1) != 1)
                        return false;
                if (buf[n] == '\n') {
                        buf[n] = '\0';
                        return true;
                }
                n++;
        }
        return false;
}

/* Runs `python3 script` and reads n_ports ports from it. Returns its pid,
 * or -1 (said on stderr) with nothing left running. */
static inline pid_t fake_server_start(const char *script, int *ports, size_t n_ports)
{
        uint64_t deadline = fake_server_now() + FAKE_SERVER_START_USEC;
        char line[32];
        int pipefd[2];
        pid_t pid;

        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -1;
        pid = fork();
        if (pid < 0) {
                close(pipefd[0]);
                close(pipefd[1]);
                return -1;
        }
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGTERM);
                dup2(pipefd[1], STDOUT_FILENO);
                execlp("python3", "python3", script, (char *)NULL);
                _exit(127);
        }
        close(pipefd[1]);
        for (size_t i = 0; i < n_ports; i++)
                if (!fake_server_read_line(pipefd[0], line, sizeof line, deadline) || (ports[i] = atoi(line)) <= 0) {
                        fprintf(stderr, "%s did not report its port%s\n", script, n_ports == 1 ? "" : "s");
                        kill(pid, SIGTERM);
                        waitpid(pid, NULL, 0);
                        close(pipefd[0]);
                        return -1;
                }
        close(pipefd[0]);
        return pid;
}

static inline void fake_server_stop(pid_t pid)
{
        if (pid > 0) {
                kill(pid, SIGTERM);
                waitpid(pid, NULL, 0);
        }
}
