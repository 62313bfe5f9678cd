// The per-container monitor (what conmon is to CRI-O): a small detached process that is the parent
// of one container instance, so it outlives a restart (or kill -9) of the virtual kubelet. It
//   - spawns the container command (nsenter … bwrap …, wrapped in `script` for a TTY),
//   - writes its stdout/stderr to the CRI log file (the format and rotation of cri-log.ts),
//   - serves attach sessions on a unix socket (output fan-out, stdin, TTY resize; frames of
//     shim.ts: [type u8][length u32 BE][payload]),
//   - records the start (state file) and the exit status (exit file), then exits.
// Run as: sandbox-monitor <spec>, the spec being NUL-terminated `key=value` entries (encodeSpec
// in shim.ts; argv and env repeat). Built with the machine's C compiler on first use (monitor-build.ts).
// One thread, one poll loop; every file descriptor is non-blocking except the log's.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

enum { FRAME_STDIN = 0, FRAME_STDOUT = 1, FRAME_STDERR = 2, FRAME_EXIT = 3, FRAME_RESIZE = 4, FRAME_STDIN_EOF = 5 };
enum { STDOUT_STREAM = 0, STDERR_STREAM = 1 };

#define MAX_LINE (16 * 1024)      // cri-log.ts MAX_LINE
#define READ_CHUNK (64 * 1024)    // one read from the container's pipes
#define STDERR_HEAD_MAX 4096      // how much stderr may be held back looking for bwrap's execvp error
#define MAX_CLIENTS 64
#define MAX_FRAME (1 << 20)       // a larger incoming frame ends the session
#define MAX_QUEUE (64 << 20)      // a session that lets this much output pile up is dropped
#define INFO_DEADLINE_MS 5000
#define INFO_POLL_MS 25
#define CHILD_POLL_MS 200
#define CHILD_GRACE_MS 500
#define LINGER_MS 200

// ---- small helpers ----

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n);
  if (!q) {
    fputs("sandbox-monitor: out of memory\n", stderr);
    _exit(70);
  }
  return q;
}

struct buf {
  char *data;
  size_t len, cap, off;  // bytes [off, len) are pending
};

static void buf_append(struct buf *b, const void *data, size_t n) {
  if (b->off > 0 && b->off == b->len) b->off = b->len = 0;
  if (b->len + n > b->cap) {
    if (b->off > 0) {  // compact first
      memmove(b->data, b->data + b->off, b->len - b->off);
      b->len -= b->off;
      b->off = 0;
    }
    if (b->len + n > b->cap) {
      size_t cap = b->cap ? b->cap : 4096;
      while (cap < b->len + n) cap *= 2;
      b->data = xrealloc(b->data, cap);
      b->cap = cap;
    }
  }
  memcpy(b->data + b->len, data, n);
  b->len += n;
}

static size_t buf_pending(const struct buf *b) { return b->len - b->off; }

static void buf_free(struct buf *b) {
  free(b->data);
  memset(b, 0, sizeof *b);
}

/** Writes what it can of `b` to the non-blocking `fd`; -1 on an error other than EAGAIN. */
static int buf_flush(struct buf *b, int fd) {
  while (buf_pending(b) > 0) {
    ssize_t n = write(fd, b->data + b->off, buf_pending(b));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN ? 0 : -1;
    }
    b->off += (size_t)n;
  }
  return 0;
}

static void write_all(int fd, const char *data, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return;  // disk full or the like: the log loses this record, as a failed write in Node would have
    }
    data += w;
    n -= (size_t)w;
  }
}

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

// Wall-clock nanoseconds, monotonic within the process (cri-log.ts nowNs).
static int64_t clock_base_ns;
static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return clock_base_ns + (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
static void init_clock(void) {
  struct timespec real, mono;
  clock_gettime(CLOCK_REALTIME, &real);
  clock_gettime(CLOCK_MONOTONIC, &mono);
  clock_base_ns = ((int64_t)real.tv_sec - mono.tv_sec) * 1000000000 + (real.tv_nsec - mono.tv_nsec);
}

/** Go's time.RFC3339Nano in UTC: fractional seconds without trailing zeros (none for whole seconds). */
static void format_rfc3339nano(int64_t ns, char out[40]) {
  time_t secs = (time_t)(ns / 1000000000);
  long frac = (long)(ns % 1000000000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  size_t n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
  if (frac > 0) {
    char digits[11];
    snprintf(digits, sizeof digits, ".%09ld", frac);
    size_t len = strlen(digits);
    while (digits[len - 1] == '0') digits[--len] = '\0';
    memcpy(out + n, digits, len);
    n += len;
  }
  out[n++] = 'Z';
  out[n] = '\0';
}

/** Appends `s` as a JSON string (quotes included). */
static void json_string(struct buf *b, const char *s) {
  buf_append(b, "\"", 1);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    char esc[8];
    if (*p == '"' || *p == '\\') {
      esc[0] = '\\';
      esc[1] = (char)*p;
      buf_append(b, esc, 2);
    } else if (*p == '\n') {
      buf_append(b, "\\n", 2);
    } else if (*p == '\t') {
      buf_append(b, "\\t", 2);
    } else if (*p == '\r') {
      buf_append(b, "\\r", 2);
    } else if (*p < 0x20 || *p == 0x7f) {
      snprintf(esc, sizeof esc, "\\u%04x", *p);
      buf_append(b, esc, 6);
    } else {
      buf_append(b, p, 1);
    }
  }
  buf_append(b, "\"", 1);
}

static void json_printf(struct buf *b, const char *fmt, ...) {
  char tmp[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n > 0) buf_append(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/** Writes `file` through a temporary file and a rename, so readers never see half of it. */
static void write_atomic(const char *file, const struct buf *b) {
  char tmp[PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s.tmp", file);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) return;
  write_all(fd, b->data + b->off, buf_pending(b));
  close(fd);
  rename(tmp, file);
}

// ---- the spec ----

struct spec {
  char **argv;
  size_t argc;
  char **env;
  size_t envc;
  int tty, use_stdin, stdin_once;
  const char *log_file, *socket, *state_file, *exit_file, *info_file, *stty;
  long long log_max_bytes;
  long log_max_files;
};

static int read_spec(const char *file, struct spec *s) {
  int fd = open(file, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  struct buf b = {0};
  char chunk[8192];
  ssize_t n;
  while ((n = read(fd, chunk, sizeof chunk)) > 0) buf_append(&b, chunk, (size_t)n);
  close(fd);
  if (b.len == 0 || b.data[b.len - 1] != '\0') return -1;
  memset(s, 0, sizeof *s);
  for (size_t at = 0; at < b.len;) {
    char *entry = b.data + at;
    at += strlen(entry) + 1;
    char *eq = strchr(entry, '=');
    if (!eq) return -1;
    *eq = '\0';
    char *value = eq + 1;
    if (!strcmp(entry, "argv")) {
      s->argv = xrealloc(s->argv, (s->argc + 2) * sizeof *s->argv);
      s->argv[s->argc++] = value;
      s->argv[s->argc] = NULL;
    } else if (!strcmp(entry, "env")) {
      s->env = xrealloc(s->env, (s->envc + 2) * sizeof *s->env);
      s->env[s->envc++] = value;
      s->env[s->envc] = NULL;
    } else if (!strcmp(entry, "tty")) s->tty = !strcmp(value, "1");
    else if (!strcmp(entry, "stdin")) s->use_stdin = !strcmp(value, "1");
    else if (!strcmp(entry, "stdinOnce")) s->stdin_once = !strcmp(value, "1");
    else if (!strcmp(entry, "logFile")) s->log_file = value;
    else if (!strcmp(entry, "logMaxBytes")) s->log_max_bytes = atoll(value);
    else if (!strcmp(entry, "logMaxFiles")) s->log_max_files = atol(value);
    else if (!strcmp(entry, "socket")) s->socket = value;
    else if (!strcmp(entry, "stateFile")) s->state_file = value;
    else if (!strcmp(entry, "exitFile")) s->exit_file = value;
    else if (!strcmp(entry, "infoFile")) s->info_file = value;
    else if (!strcmp(entry, "stty")) s->stty = value;
    // unknown keys: a newer launcher's, ignored
  }
  if (!s->env) {
    s->env = xrealloc(NULL, sizeof *s->env);
    s->env[0] = NULL;
  }
  if (s->argc == 0 || !s->log_file || !s->socket || !s->state_file || !s->exit_file) return -1;
  return 0;
}

// ---- the CRI log (cri-log.ts CriLogWriter) ----

struct cri_log {
  int fd;
  long long size;
  const char *file;
  long long max_bytes;
  long max_files;
  char pending[2][MAX_LINE];
  size_t pending_len[2];
};

static void log_open(struct cri_log *l) {
  l->fd = open(l->file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  struct stat st;
  l->size = l->fd >= 0 && fstat(l->fd, &st) == 0 ? st.st_size : 0;
}

/** `<n>.log` becomes `<n>.log.1`, older pieces shift to .2, …; at most max_files files are kept. */
static void log_rotate(struct cri_log *l) {
  if (l->fd >= 0) close(l->fd);
  long keep = l->max_files - 1 > 0 ? l->max_files - 1 : 0;
  char from[PATH_MAX], to[PATH_MAX];
  for (long i = keep; i >= 1; i--) {
    if (i == 1) snprintf(from, sizeof from, "%s", l->file);
    else snprintf(from, sizeof from, "%s.%ld", l->file, i - 1);
    snprintf(to, sizeof to, "%s.%ld", l->file, i);
    if (i == keep) unlink(to);
    rename(from, to);  // ENOENT when `from` does not exist: nothing to shift
  }
  if (keep == 0) unlink(l->file);
  log_open(l);
  l->size = 0;
}

static void log_emit(struct cri_log *l, int stream, int partial) {
  char head[64];
  char time[40];
  format_rfc3339nano(now_ns(), time);
  int n = snprintf(head, sizeof head, "%s %s %c ", time, stream == STDOUT_STREAM ? "stdout" : "stderr", partial ? 'P' : 'F');
  size_t len = (size_t)n + l->pending_len[stream] + 1;
  char record[64 + MAX_LINE + 1];
  memcpy(record, head, (size_t)n);
  memcpy(record + n, l->pending[stream], l->pending_len[stream]);
  record[len - 1] = '\n';
  l->pending_len[stream] = 0;
  if (l->fd >= 0) write_all(l->fd, record, len);
  l->size += (long long)len;
  if (l->size >= l->max_bytes) log_rotate(l);
}

/** Splits output into lines per stream; pieces beyond MAX_LINE go out as partial records. */
static void log_write(struct cri_log *l, int stream, const char *data, size_t n) {
  size_t start = 0;
  while (start < n) {
    const char *nl = memchr(data + start, '\n', n - start);
    size_t end = nl ? (size_t)(nl - data) : n;
    const char *piece = data + start;
    size_t piece_len = end - start;
    while (l->pending_len[stream] + piece_len > MAX_LINE) {
      size_t room = MAX_LINE - l->pending_len[stream];
      memcpy(l->pending[stream] + l->pending_len[stream], piece, room);
      l->pending_len[stream] += room;
      log_emit(l, stream, 1);
      piece += room;
      piece_len -= room;
    }
    if (piece_len > 0) {
      memcpy(l->pending[stream] + l->pending_len[stream], piece, piece_len);
      l->pending_len[stream] += piece_len;
    }
    if (!nl) break;
    log_emit(l, stream, 0);
    start = end + 1;
  }
}

/** Unterminated output goes out as full lines, then the file is closed. */
static void log_close(struct cri_log *l) {
  for (int s = 0; s < 2; s++)
    if (l->pending_len[s] > 0) log_emit(l, s, 0);
  if (l->fd >= 0) close(l->fd);
  l->fd = -1;
}

// ---- /proc ----

/** State and start time (clock ticks) of a process; 0 when it is gone. */
static int read_stat(pid_t pid, char *state, unsigned long long *start_ticks) {
  char path[64], text[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, text, sizeof text - 1);
  close(fd);
  if (n <= 0) return 0;
  text[n] = '\0';
  char *close_paren = strrchr(text, ')');
  if (!close_paren || close_paren[1] == '\0') return 0;
  char *p = close_paren + 2;  // field 3 (state)
  *state = *p;
  for (int field = 3; field < 22 && p; field++) {
    p = strchr(p, ' ');
    if (p) p++;
  }
  if (!p) return 0;
  *start_ticks = strtoull(p, NULL, 10);
  return 1;
}

static pid_t parent_of(const char *pid_name) {
  char path[300], text[1024];
  snprintf(path, sizeof path, "/proc/%s/stat", pid_name);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, text, sizeof text - 1);
  close(fd);
  if (n <= 0) return -1;
  text[n] = '\0';
  char *p = strrchr(text, ')');
  if (!p) return -1;
  char state;
  int ppid;
  if (sscanf(p + 2, "%c %d", &state, &ppid) != 2) return -1;
  return ppid;
}

/** The pty slave `script` (pid `script_pid`) made: its child's stdin (procfs.ts ptySlave). */
static int pty_slave(pid_t script_pid, char *out, size_t size) {
  DIR *dir = opendir("/proc");
  if (!dir) return 0;
  struct dirent *e;
  int found = 0;
  while (!found && (e = readdir(dir))) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    if (parent_of(e->d_name) != script_pid) continue;
    char link[300];
    snprintf(link, sizeof link, "/proc/%s/fd/0", e->d_name);
    ssize_t n = readlink(link, out, size - 1);
    if (n > 0) {
      out[n] = '\0';
      found = strncmp(out, "/dev/pts/", 9) == 0;
    }
  }
  closedir(dir);
  return found;
}

// ---- the monitor ----

struct client {
  int fd;
  struct buf in, out;
  int used_stdin;
  int ending;  // half-closed by us once its output is flushed
};

static struct spec spec;
static struct cri_log log_writer;
static char started_at[40];
static pid_t child_pid = -1;
static int child_status, child_reaped;
static int out_fd = -1, err_fd = -1, in_fd = -1, listen_fd = -1, sig_fd = -1, inotify_fd = -1;
static struct buf stdin_queue;
static int stdin_closed, stdin_closing;
static struct client clients[MAX_CLIENTS];
static size_t nclients;
static struct buf stderr_head;
static int stderr_head_done;
static char *start_error;
static pid_t sandboxed_pid;  // bwrap's child (info file)
static unsigned long long sandboxed_start;
static int64_t info_deadline, info_next, child_next, kill_at;
static int info_done = 1;
static int exited;

static void write_state(void) {
  struct buf b = {0};
  json_printf(&b, "{\"shimPid\":%d,\"pid\":%d,\"startedAt\":", (int)getpid(), (int)child_pid);
  json_string(&b, started_at);
  if (sandboxed_pid > 0) json_printf(&b, ",\"childPid\":%d", (int)sandboxed_pid);
  buf_append(&b, "}", 1);
  write_atomic(spec.state_file, &b);
  buf_free(&b);
}

static void drop_client(size_t i) {
  struct client *c = &clients[i];
  close(c->fd);
  buf_free(&c->in);
  buf_free(&c->out);
  // stdinOnce: the container's stdin closes when the first attach session that used it ends.
  int close_stdin = c->used_stdin && spec.stdin_once && !stdin_closed;
  clients[i] = clients[--nclients];
  if (close_stdin) stdin_closing = stdin_closed = 1;
}

static void send_frame(struct client *c, int type, const void *data, size_t n) {
  unsigned char head[5] = {(unsigned char)type, (unsigned char)(n >> 24), (unsigned char)(n >> 16), (unsigned char)(n >> 8), (unsigned char)n};
  buf_append(&c->out, head, 5);
  buf_append(&c->out, data, n);
}

static void broadcast(int type, const void *data, size_t n) {
  for (size_t i = 0; i < nclients;) {
    send_frame(&clients[i], type, data, n);
    if (buf_flush(&clients[i].out, clients[i].fd) < 0 || buf_pending(&clients[i].out) > MAX_QUEUE) drop_client(i);
    else i++;
  }
}

static void resize(const char *payload, size_t n) {
  if (!spec.tty || !spec.stty || child_pid <= 0) return;
  char text[256];
  if (n >= sizeof text) return;
  memcpy(text, payload, n);
  text[n] = '\0';
  const char *w = strstr(text, "\"width\":"), *h = strstr(text, "\"height\":");
  if (!w || !h) return;
  long width = strtol(w + 8, NULL, 10), height = strtol(h + 9, NULL, 10);
  char slave[PATH_MAX];
  if (width <= 0 || height <= 0 || !pty_slave(child_pid, slave, sizeof slave)) return;
  char rows[24], cols[24];
  snprintf(rows, sizeof rows, "%ld", height);
  snprintf(cols, sizeof cols, "%ld", width);
  pid_t pid = fork();
  if (pid == 0) {
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execl(spec.stty, spec.stty, "-F", slave, "rows", rows, "cols", cols, (char *)NULL);
    _exit(127);
  }
  // reaped with the other children (SIGCHLD)
}

static void handle_frame(struct client *c, int type, const char *payload, size_t n) {
  if (type == FRAME_STDIN && !stdin_closed) {
    c->used_stdin = 1;
    if (in_fd >= 0) buf_append(&stdin_queue, payload, n);
  } else if (type == FRAME_STDIN_EOF && !stdin_closed && spec.stdin_once) {
    stdin_closing = stdin_closed = 1;
  } else if (type == FRAME_RESIZE) {
    resize(payload, n);
  }
}

/** Reads from client `i`; returns 0 when it was dropped. */
static int read_client(size_t i) {
  struct client *c = &clients[i];
  char chunk[READ_CHUNK];
  for (;;) {
    ssize_t n = read(c->fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    if (n <= 0) {
      drop_client(i);
      return 0;
    }
    buf_append(&c->in, chunk, (size_t)n);
    while (buf_pending(&c->in) >= 5) {
      const unsigned char *p = (const unsigned char *)c->in.data + c->in.off;
      size_t len = (size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 | p[4];
      if (len > MAX_FRAME) {
        drop_client(i);
        return 0;
      }
      if (buf_pending(&c->in) < 5 + len) break;
      handle_frame(c, p[0], (const char *)p + 5, len);
      c->in.off += 5 + len;
    }
    if ((size_t)n < sizeof chunk) break;
  }
  return 1;
}

static void accept_clients(void) {
  for (;;) {
    int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    if (nclients == MAX_CLIENTS || exited) {
      close(fd);
      continue;
    }
    memset(&clients[nclients], 0, sizeof clients[nclients]);
    clients[nclients++].fd = fd;
  }
}

/** stderr: bwrap reports a command it cannot execute before anything of the container's; that is a start error, not output. */
static void on_stderr(const char *data, size_t n) {
  if (!stderr_head_done) {
    buf_append(&stderr_head, data, n);
    const char *head = stderr_head.data;
    const char *nl = memchr(head, '\n', stderr_head.len);
    if (!nl && stderr_head.len < STDERR_HEAD_MAX) return;
    stderr_head_done = 1;
    size_t first = nl ? (size_t)(nl - head) : stderr_head.len;
    size_t skip = 0;
    static const char prefix[] = "bwrap: execvp ";
    if (first >= sizeof prefix - 1 && memcmp(head, prefix, sizeof prefix - 1) == 0 && !memchr(head, '\r', first)) {
      start_error = strndup(head + 7, first - 7);  // without "bwrap: "
      skip = nl ? first + 1 : first;
    }
    size_t rest = stderr_head.len - skip;
    if (rest > 0) {
      log_write(&log_writer, STDERR_STREAM, head + skip, rest);
      broadcast(FRAME_STDERR, head + skip, rest);
    }
    buf_free(&stderr_head);
    return;
  }
  log_write(&log_writer, STDERR_STREAM, data, n);
  broadcast(FRAME_STDERR, data, n);
}

/** Reads what the pipe holds; closes it (-1) at its end. */
static void drain_pipe(int *fd, int stream) {
  char chunk[READ_CHUNK];
  for (;;) {
    ssize_t n = read(*fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) {
      close(*fd);
      *fd = -1;
      return;
    }
    if (stream == STDOUT_STREAM) {
      log_write(&log_writer, STDOUT_STREAM, chunk, (size_t)n);
      broadcast(FRAME_STDOUT, chunk, (size_t)n);
    } else {
      on_stderr(chunk, (size_t)n);
    }
    if ((size_t)n < sizeof chunk) return;
  }
}

static void reap(void) {
  struct signalfd_siginfo si;
  while (read(sig_fd, &si, sizeof si) > 0) {
  }
  int status;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    if (pid == child_pid) {
      child_status = status;
      child_reaped = 1;
    }
  }
}

/** bwrap writes its info file ({"child-pid": N, …}) once the sandboxed child exists: its pid goes into the state file. */
static void check_info(void) {
  if (info_done) return;
  char text[4096];
  int fd = open(spec.info_file, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    text[n > 0 ? n : 0] = '\0';
    const char *key = strstr(text, "\"child-pid\"");
    const char *colon = key ? strchr(key, ':') : NULL;
    long pid = colon ? strtol(colon + 1, NULL, 10) : 0;
    if (pid > 0 && strchr(colon, '}')) {  // the whole object is there
      info_done = 1;
      sandboxed_pid = (pid_t)pid;
      char state;
      if (!read_stat(sandboxed_pid, &state, &sandboxed_start)) sandboxed_start = 0;
      write_state();
      child_next = mono_ms() + CHILD_POLL_MS;
    }
  }
  if (!info_done && (mono_ms() > info_deadline || child_reaped || exited)) info_done = 1;
  if (info_done && inotify_fd >= 0) {
    close(inotify_fd);
    inotify_fd = -1;
  }
}

/**
 * bwrap's monitor learns how a nested pid namespace's init ended from that init itself; when the
 * init is SIGKILLed (a stop past its grace period, the pod's sandbox going away) the monitor would
 * wait forever. So: once the sandboxed child is gone, the monitor gets a moment, then SIGKILL.
 */
static void check_sandboxed(void) {
  if (sandboxed_pid <= 0 || child_next == 0 || exited) return;
  char state;
  unsigned long long start;
  if (read_stat(sandboxed_pid, &state, &start) && start == sandboxed_start && state != 'Z') {
    child_next = mono_ms() + CHILD_POLL_MS;
    return;
  }
  child_next = 0;
  kill_at = mono_ms() + CHILD_GRACE_MS;
}

static void finish(int exit_code, const char *signal_name, const char *error) {
  if (exited) return;
  exited = 1;
  if (!stderr_head_done && stderr_head.len > 0) log_write(&log_writer, STDERR_STREAM, stderr_head.data, stderr_head.len);
  log_close(&log_writer);
  char finished_at[40];
  format_rfc3339nano(now_ns(), finished_at);
  const char *why = start_error ? start_error : error;
  if (why) exit_code = 128;
  struct buf b = {0};
  json_printf(&b, "{\"exitCode\":%d", exit_code);
  if (signal_name) {
    buf_append(&b, ",\"signal\":", 10);
    json_string(&b, signal_name);
  }
  buf_append(&b, ",\"startedAt\":", 13);
  json_string(&b, started_at);
  buf_append(&b, ",\"finishedAt\":", 14);
  json_string(&b, finished_at);
  if (why) {
    buf_append(&b, ",\"startError\":", 14);
    json_string(&b, why);
  }
  buf_append(&b, "}", 1);
  write_atomic(spec.exit_file, &b);
  broadcast(FRAME_EXIT, b.data, b.len);
  buf_free(&b);
  for (size_t i = 0; i < nclients; i++) clients[i].ending = 1;
  close(listen_fd);
  listen_fd = -1;
  unlink(spec.socket);
}

/** Node's `spawn`: the command with the spec's environment, PATH looked up in that environment. */
static void exec_command(void) {
  const char *file = spec.argv[0];
  if (strchr(file, '/')) {
    execve(file, spec.argv, spec.env);
    return;
  }
  const char *path = "/usr/local/bin:/usr/bin:/bin";
  for (size_t i = 0; i < spec.envc; i++)
    if (!strncmp(spec.env[i], "PATH=", 5)) path = spec.env[i] + 5;
  int saved = ENOENT;
  for (const char *p = path;; p++) {
    const char *end = strchrnul(p, ':');
    char full[PATH_MAX];
    snprintf(full, sizeof full, "%.*s%s%s", (int)(end - p), p, end > p ? "/" : "", file);
    execve(full, spec.argv, spec.env);
    if (errno != ENOENT) saved = errno;
    if (!*end) break;
    p = end;
  }
  errno = saved;
}

/** Forks the command with its pipes; returns 0, or the errno why it could not run. */
static int spawn_command(void) {
  int out[2], err[2], in[2] = {-1, -1}, report[2];
  if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC) || pipe2(report, O_CLOEXEC)) return errno;
  if (spec.use_stdin && pipe2(in, O_CLOEXEC)) return errno;
  pid_t pid = fork();
  if (pid < 0) return errno;
  if (pid == 0) {
    int stdin_fd = spec.use_stdin ? in[0] : open("/dev/null", O_RDONLY);
    dup2(stdin_fd, 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    // Dispositions and mask as a fresh process has them (ignored signals would be inherited).
    for (int sig = 1; sig < NSIG; sig++) signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    exec_command();
    int e = errno;
    write_all(report[1], (const char *)&e, sizeof e);
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  close(report[1]);
  if (spec.use_stdin) close(in[0]);
  int e = 0;
  ssize_t n;
  while ((n = read(report[0], &e, sizeof e)) < 0 && errno == EINTR) {
  }
  close(report[0]);
  child_pid = pid;
  if (n == (ssize_t)sizeof e) {  // exec failed: the child exits at once
    close(out[0]);
    close(err[0]);
    if (spec.use_stdin) close(in[1]);
    return e;
  }
  out_fd = out[0];
  err_fd = err[0];
  in_fd = spec.use_stdin ? in[1] : -1;
  fcntl(out_fd, F_SETFL, O_NONBLOCK);
  fcntl(err_fd, F_SETFL, O_NONBLOCK);
  if (in_fd >= 0) fcntl(in_fd, F_SETFL, O_NONBLOCK);
  return 0;
}

static int listen_on(const char *file) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(file) >= sizeof addr.sun_path) return -1;
  strcpy(addr.sun_path, file);
  unlink(file);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) || listen(fd, 16)) {
    close(fd);
    return -1;
  }
  return fd;
}

static void noop(int sig) { (void)sig; }

static int timeout_until(int64_t at, int timeout) {
  if (at == 0) return timeout;
  int64_t left = at - mono_ms();
  if (left < 0) left = 0;
  return timeout < 0 || left < timeout ? (int)left : timeout;
}

int main(int argc, char **argv) {
  if (argc != 2 || read_spec(argv[1], &spec)) {
    fprintf(stderr, "usage: sandbox-monitor <spec> (NUL-terminated key=value entries)\n");
    return 2;
  }
  init_clock();
  stdin_closed = !spec.use_stdin;
  struct sigaction quiet = {.sa_handler = noop};
  sigaction(SIGHUP, &quiet, NULL);
  sigaction(SIGINT, &quiet, NULL);
  signal(SIGPIPE, SIG_IGN);
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, NULL);
  sig_fd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);

  log_writer.file = spec.log_file;
  log_writer.max_bytes = spec.log_max_bytes > 0 ? spec.log_max_bytes : LLONG_MAX;
  log_writer.max_files = spec.log_max_files;
  log_open(&log_writer);
  format_rfc3339nano(now_ns(), started_at);
  listen_fd = listen_on(spec.socket);

  int spawn_error = spawn_command();
  if (spawn_error) {
    char message[PATH_MAX + 128];
    const char *name = strerrorname_np(spawn_error);
    snprintf(message, sizeof message, "failed to start %s: spawn %s %s", spec.argv[0], spec.argv[0], name ? name : strerror(spawn_error));
    reap();
    finish(128, NULL, message);
  } else {
    write_state();
    if (spec.info_file) {
      info_done = 0;
      info_deadline = mono_ms() + INFO_DEADLINE_MS;
      info_next = mono_ms() + INFO_POLL_MS;
      char dir[PATH_MAX];
      snprintf(dir, sizeof dir, "%s", spec.info_file);
      char *slash = strrchr(dir, '/');
      if (slash) *slash = '\0';
      inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
      if (inotify_fd >= 0 && inotify_add_watch(inotify_fd, slash ? dir : ".", IN_CREATE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO) < 0) {
        close(inotify_fd);
        inotify_fd = -1;
      }
      check_info();
    }
  }

  int64_t linger_until = 0;
  for (;;) {
    if (!exited && child_reaped && out_fd < 0 && err_fd < 0) {
      // Like Node's 'close': the process has exited and its output is all read.
      if (WIFEXITED(child_status)) {
        finish(WEXITSTATUS(child_status), NULL, NULL);
      } else {
        int sig = WTERMSIG(child_status);
        char name[32];
        const char *abbrev = sigabbrev_np(sig);
        snprintf(name, sizeof name, "SIG%s", abbrev ? abbrev : "UNKNOWN");
        finish(128 + sig, name, NULL);
      }
    }
    if (exited) {
      if (!linger_until) linger_until = mono_ms() + LINGER_MS;
      for (size_t i = 0; i < nclients;) {
        struct client *c = &clients[i];
        if (buf_flush(&c->out, c->fd) < 0) {
          drop_client(i);
          continue;
        }
        if (buf_pending(&c->out) == 0 && c->ending == 1) {
          shutdown(c->fd, SHUT_WR);
          c->ending = 2;
        }
        i++;
      }
      int flushed = 1;
      for (size_t i = 0; i < nclients; i++) flushed &= buf_pending(&clients[i].out) == 0;
      if (flushed || mono_ms() >= linger_until) break;
    }
    if (stdin_closing && in_fd >= 0 && buf_pending(&stdin_queue) == 0) {
      close(in_fd);
      in_fd = -1;
    }

    struct pollfd fds[8 + MAX_CLIENTS];
    int nfds = 0;
    int out_at = -1, err_at = -1, in_at = -1, listen_at = -1, sig_at = -1, inotify_at = -1, clients_at;
    if (out_fd >= 0) fds[out_at = nfds++] = (struct pollfd){.fd = out_fd, .events = POLLIN};
    if (err_fd >= 0) fds[err_at = nfds++] = (struct pollfd){.fd = err_fd, .events = POLLIN};
    if (in_fd >= 0 && buf_pending(&stdin_queue) > 0) fds[in_at = nfds++] = (struct pollfd){.fd = in_fd, .events = POLLOUT};
    if (listen_fd >= 0) fds[listen_at = nfds++] = (struct pollfd){.fd = listen_fd, .events = POLLIN};
    fds[sig_at = nfds++] = (struct pollfd){.fd = sig_fd, .events = POLLIN};
    if (inotify_fd >= 0) fds[inotify_at = nfds++] = (struct pollfd){.fd = inotify_fd, .events = POLLIN};
    clients_at = nfds;
    for (size_t i = 0; i < nclients; i++) {
      // Backpressure: a session's stdin waits while the container does not read what came before.
      short events = buf_pending(&stdin_queue) > MAX_FRAME ? 0 : POLLIN;
      if (buf_pending(&clients[i].out) > 0) events |= POLLOUT;
      fds[nfds++] = (struct pollfd){.fd = clients[i].fd, .events = events};
    }
    int timeout = -1;
    if (!info_done) timeout = timeout_until(info_next, timeout);
    timeout = timeout_until(child_next, timeout);
    timeout = timeout_until(kill_at, timeout);
    if (exited) timeout = timeout_until(linger_until, timeout);
    if (poll(fds, (nfds_t)nfds, timeout) < 0 && errno != EINTR) break;

    if (sig_at >= 0 && fds[sig_at].revents) reap();
    if (out_at >= 0 && fds[out_at].revents) drain_pipe(&out_fd, STDOUT_STREAM);
    if (err_at >= 0 && fds[err_at].revents) drain_pipe(&err_fd, STDERR_STREAM);
    if (in_at >= 0 && fds[in_at].revents && in_fd >= 0 && buf_flush(&stdin_queue, in_fd) < 0) {
      // the container closed its stdin: what is left is dropped, as Node's ignored EPIPE did
      buf_free(&stdin_queue);
    }
    // Clients (the array may shrink while handled: walk it by file descriptor).
    for (int k = clients_at; k < nfds; k++) {
      if (!fds[k].revents) continue;
      size_t i = 0;
      while (i < nclients && clients[i].fd != fds[k].fd) i++;
      if (i == nclients) continue;
      if (fds[k].revents & POLLOUT && buf_flush(&clients[i].out, clients[i].fd) < 0) {
        drop_client(i);
        continue;
      }
      if (fds[k].revents & (POLLIN | POLLHUP | POLLERR)) read_client(i);
    }
    if (listen_at >= 0 && fds[listen_at].revents) accept_clients();
    if (inotify_at >= 0 && fds[inotify_at].revents) {
      char events[4096];
      while (read(inotify_fd, events, sizeof events) > 0) {
      }
      check_info();
    }
    int64_t now = mono_ms();
    if (!info_done && now >= info_next) {
      info_next = now + INFO_POLL_MS;
      check_info();
    }
    if (child_next && now >= child_next) check_sandboxed();
    if (kill_at && now >= kill_at) {
      kill_at = 0;
      if (!exited && !child_reaped) kill(child_pid, SIGKILL);
    }
  }
  return 0;
}
