package uml

import (
	"errors"
	"fmt"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// The kernel process's system calls are filtered (seccomp), as Firecracker's jailer filters its
// VMM's: what a UML kernel never does on the host, a guest that took it over cannot do either. It
// is a deny list, not an allow list: UML's own needs (ptrace of its address spaces, their stubs'
// memory calls, signals, timers, its devices) are many and move between kernel versions, while what
// it never needs is what escapes a sandbox. The filter is checked before Landlock, and holds where
// Landlock has no say or the host has no Landlock:
//   - sockets other than unix ones (Landlock up to ABI 7 mediates only TCP: UDP, raw, netlink and
//     packet sockets would reach the host's services and its network), unless a raw UML transport
//     was asked for (boot.net = "uml:...");
//   - io_uring, whose submitted operations (socket, connect, open) no system-call filter sees;
//   - loading code into the host kernel (modules, kexec, BPF), perf events, keyrings, userfaultfd
//     (an exploit's tool), new namespaces and mounts, file handles (open_by_handle_at escapes a
//     chroot or container given the capability), port I/O, clocks, swap, reboot, the kernel log;
//   - TIOCSTI and TIOCLINUX, which would type into the terminal the console runs on;
//   - files made set-user-ID or set-group-ID, or writable to others (modeArgs); without a shared
//     folder, any change of a file's mode, owner, times or attributes (fileMetadata); other
//     processes' limits and priorities (otherProcesses); socket pairs of any family but unix;
//     a new session, inotify;
//   - the i386, x32 and any other architecture's system-call tables, which a filter on x86-64
//     numbers would not cover.
//
// A denied call fails with EPERM (ENOSYS for the other tables and for seccompNotThere). Only amd64
// hosts get a filter: UML runs on x86 alone.

// seccompDenied are the system calls the kernel process is refused outright.
var seccompDenied = []uint32{
	unix.SYS_IO_URING_SETUP, unix.SYS_IO_URING_ENTER, unix.SYS_IO_URING_REGISTER,
	unix.SYS_INIT_MODULE, unix.SYS_FINIT_MODULE, unix.SYS_DELETE_MODULE,
	unix.SYS_KEXEC_LOAD, unix.SYS_KEXEC_FILE_LOAD, unix.SYS_BPF, unix.SYS_PERF_EVENT_OPEN,
	unix.SYS_ADD_KEY, unix.SYS_REQUEST_KEY, unix.SYS_KEYCTL, unix.SYS_USERFAULTFD,
	unix.SYS_UNSHARE, unix.SYS_SETNS, unix.SYS_MOUNT, unix.SYS_UMOUNT2, unix.SYS_PIVOT_ROOT,
	unix.SYS_CHROOT, unix.SYS_OPEN_TREE, unix.SYS_MOVE_MOUNT, unix.SYS_FSOPEN, unix.SYS_FSCONFIG,
	unix.SYS_FSMOUNT, unix.SYS_FSPICK, unix.SYS_MOUNT_SETATTR,
	unix.SYS_NAME_TO_HANDLE_AT, unix.SYS_OPEN_BY_HANDLE_AT,
	unix.SYS_IOPL, unix.SYS_IOPERM, unix.SYS_SWAPON, unix.SYS_SWAPOFF, unix.SYS_REBOOT,
	unix.SYS_SETTIMEOFDAY, unix.SYS_CLOCK_SETTIME, unix.SYS_CLOCK_ADJTIME, unix.SYS_ADJTIMEX,
	unix.SYS_ACCT, unix.SYS_QUOTACTL, unix.SYS_SYSLOG, unix.SYS_VHANGUP, unix.SYS_SETHOSTNAME,
	unix.SYS_SETDOMAINNAME, unix.SYS_FANOTIFY_INIT, unix.SYS_QUOTACTL_FD, unix.SYS_OPEN_TREE_ATTR,
	// A new session leaves the kernel's process group, by which a boot's end stops every process of
	// the guest. setpgid stays (Go makes the kernel's group with it), so a process that makes a group
	// of its own still leaves it: SECURITY.md says so.
	unix.SYS_SETSID,
	// inotify would list the names of the files made or opened in any folder it can see.
	unix.SYS_INOTIFY_ADD_WATCH,
}

// fileMetadata are the calls that change a file's mode, owner, times or extended attributes, which
// Landlock does not mediate, by path or on any descriptor the sandbox let the process open (its
// kernel, the system's libraries, the terminal): without a shared folder (whose hostfs sets them)
// the kernel process is refused them all, and cannot make your files, or root's, writable to others.
var fileMetadata = []uint32{
	unix.SYS_CHMOD, unix.SYS_FCHMOD, unix.SYS_FCHMODAT, unix.SYS_FCHMODAT2, unix.SYS_CHOWN,
	unix.SYS_FCHOWN, unix.SYS_LCHOWN, unix.SYS_FCHOWNAT, unix.SYS_UTIME, unix.SYS_UTIMES,
	unix.SYS_FUTIMESAT, unix.SYS_UTIMENSAT, unix.SYS_SETXATTR, unix.SYS_LSETXATTR,
	unix.SYS_FSETXATTR, unix.SYS_REMOVEXATTR, unix.SYS_LREMOVEXATTR, unix.SYS_FREMOVEXATTR,
	unix.SYS_SETXATTRAT, unix.SYS_REMOVEXATTRAT,
}

// otherProcesses are the calls that change another process's limits, priority, CPUs or I/O class,
// which take only the same user (not Landlock's scope): each is refused unless its target argument
// is 0, the caller itself (setpriority and ioprio_set also need their "process" kind, 0 and 1).
var otherProcesses = []struct{ nr, arg, self uint32 }{
	{unix.SYS_PRLIMIT64, 0, 0}, {unix.SYS_SETPRIORITY, 0, unix.PRIO_PROCESS}, {unix.SYS_SETPRIORITY, 1, 0},
	{unix.SYS_SCHED_SETAFFINITY, 0, 0}, {unix.SYS_SCHED_SETSCHEDULER, 0, 0}, {unix.SYS_SCHED_SETPARAM, 0, 0},
	{unix.SYS_SCHED_SETATTR, 0, 0}, {unix.SYS_IOPRIO_SET, 0, 1}, {unix.SYS_IOPRIO_SET, 1, 0},
	{unix.SYS_MIGRATE_PAGES, 0, 0}, {unix.SYS_MOVE_PAGES, 0, 0},
}

// seccompNotThere are refused as if this kernel had no such call, so that callers fall back to
// one whose arguments a filter can read: clone3 and openat2 take theirs in a structure.
var seccompNotThere = []uint32{unix.SYS_CLONE3, unix.SYS_OPENAT2}

// modeArgs are the arguments that give a file its mode, by call, and the bits refused in them: a
// set-user-ID or set-group-ID file in the shared folder would run as you (as root, when root boots
// the guest) for whoever else reaches that folder; and with a shared folder, whose hostfs sets modes,
// no file the process can open is made writable to others.
var modeArgs = []struct{ nr, arg, refused uint32 }{
	{unix.SYS_CHMOD, 1, setID | othersWrite}, {unix.SYS_FCHMOD, 1, setID | othersWrite},
	{unix.SYS_FCHMODAT, 2, setID | othersWrite}, {unix.SYS_FCHMODAT2, 2, setID | othersWrite},
	{unix.SYS_OPEN, 2, setID}, {unix.SYS_OPENAT, 3, setID}, {unix.SYS_CREAT, 1, setID},
	{unix.SYS_MKNOD, 1, setID}, {unix.SYS_MKNODAT, 2, setID},
}

const (
	setID       = unix.S_ISUID | unix.S_ISGID
	othersWrite = unix.S_IWGRP | unix.S_IWOTH
)

// newNamespaces are clone's flags that make a namespace.
const newNamespaces = unix.CLONE_NEWNS | unix.CLONE_NEWUSER | unix.CLONE_NEWNET | unix.CLONE_NEWPID |
	unix.CLONE_NEWIPC | unix.CLONE_NEWUTS | unix.CLONE_NEWCGROUP

// Offsets in struct seccomp_data: the call's number, its table (architecture), and the low 32 bits
// of an argument on a little-endian host (the flags and numbers checked here are ints).
const (
	seccompNr   = 0
	seccompArch = 4
)

func seccompArgLow(n uint32) uint32 { return 16 + 8*n }

const (
	seccompAllow = unix.SECCOMP_RET_ALLOW
	seccompEPERM = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	seccompNoSys = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
	seccompNoAF  = unix.SECCOMP_RET_ERRNO | uint32(unix.EAFNOSUPPORT)
	x32Bit       = 0x40000000 // __X32_SYSCALL_BIT
)

// seccompOptions says what a boot opened: a raw UML transport (which opens packet and inet sockets)
// and a shared folder (whose hostfs sets modes, owners and times by path).
type seccompOptions struct{ rawNet, share bool }

// seccompProgram is the kernel process's filter. Each check returns on both branches, so no jump is
// long.
func seccompProgram(o seccompOptions) ([]bpf.RawInstruction, error) {
	prog := []bpf.Instruction{
		bpf.LoadAbsolute{Off: seccompArch, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.AUDIT_ARCH_X86_64, SkipTrue: 1},
		bpf.RetConstant{Val: seccompNoSys},
		bpf.LoadAbsolute{Off: seccompNr, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: x32Bit, SkipFalse: 1},
		bpf.RetConstant{Val: seccompNoSys},
	}
	prog = append(prog, refuse(seccompNoSys, seccompNotThere)...)
	prog = append(prog, refuse(seccompEPERM, seccompDenied)...)
	if !o.share {
		prog = append(prog, refuse(seccompEPERM, fileMetadata)...)
	}
	for _, p := range otherProcesses {
		prog = append(prog, argCheck(p.nr, p.arg, bpf.JumpNotEqual, p.self, seccompEPERM)...)
	}
	for _, m := range modeArgs {
		prog = append(prog, argCheck(m.nr, m.arg, bpf.JumpBitsSet, m.refused, seccompEPERM)...)
	}
	prog = append(prog, argCheck(unix.SYS_SOCKETPAIR, 0, bpf.JumpNotEqual, unix.AF_UNIX, seccompNoAF)...)
	prog = append(prog, argCheck(unix.SYS_CLONE, 0, bpf.JumpBitsSet, newNamespaces, seccompEPERM)...)
	prog = append(prog, argCheck(unix.SYS_IOCTL, 1, bpf.JumpEqual, unix.TIOCSTI, seccompEPERM)...)
	prog = append(prog, argCheck(unix.SYS_IOCTL, 1, bpf.JumpEqual, unix.TIOCLINUX, seccompEPERM)...)
	if !o.rawNet {
		prog = append(prog, argCheck(unix.SYS_SOCKET, 0, bpf.JumpNotEqual, unix.AF_UNIX, seccompNoAF)...)
	}
	prog = append(prog, bpf.RetConstant{Val: seccompAllow})
	return bpf.Assemble(prog)
}

// refuse returns ret for each call in nrs, and goes on to the next check for any other.
func refuse(ret uint32, nrs []uint32) []bpf.Instruction {
	var out []bpf.Instruction
	for _, nr := range nrs {
		out = append(out, bpf.JumpIf{Cond: bpf.JumpEqual, Val: nr, SkipFalse: 1}, bpf.RetConstant{Val: ret})
	}
	return out
}

// argCheck returns ret for call nr when its argument arg (low 32 bits) meets cond against val, and
// goes on to the next check otherwise; the number is loaded again after, for the checks that follow.
func argCheck(nr, arg uint32, cond bpf.JumpTest, val, ret uint32) []bpf.Instruction {
	return []bpf.Instruction{
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: nr, SkipFalse: 4},
		bpf.LoadAbsolute{Off: seccompArgLow(arg), Size: 4},
		bpf.JumpIf{Cond: cond, Val: val, SkipFalse: 1},
		bpf.RetConstant{Val: ret},
		bpf.LoadAbsolute{Off: seccompNr, Size: 4},
	}
}

// loadSeccomp puts the filter on the calling thread alone (no TSYNC: the rest of this program is not
// the kernel), inherited by the process it starts. no_new_privs must be set.
func loadSeccomp(o seccompOptions) error {
	if goruntime.GOARCH != "amd64" {
		return nil
	}
	raw, err := seccompProgram(o)
	if err != nil {
		return fmt.Errorf("sandbox: system-call filter: %w", err)
	}
	filters := make([]unix.SockFilter, len(raw))
	for i, in := range raw {
		filters[i] = unix.SockFilter{Code: in.Op, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(filters)), Filter: &filters[0]}
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&fprog)))
	if errno != 0 {
		return fmt.Errorf("sandbox: system-call filter: %w", errno)
	}
	return nil
}

// fileCapabilities are root's power to read and write files whatever their modes, which the kernel
// process of a guest booted by root keeps: the sandbox bounds it to the guest's own files, and it lets
// root boot what another user built. Not CHOWN or FOWNER: with them, a file the sandbox lets the
// process read (a system library) could be given away or made writable to others.
// rawNetCapabilities are a raw transport's (tap devices, packet sockets): that door is the user's.
const (
	fileCapabilities   = 1 << unix.CAP_DAC_OVERRIDE
	rawNetCapabilities = fileCapabilities | 1<<unix.CAP_NET_ADMIN | 1<<unix.CAP_NET_RAW
)

// dropCapabilities leaves the calling thread, and what it starts, with the capabilities in keep at
// most: a guest booted by root gets none of root's other powers over the host (device nodes of its
// disks, raw I/O, modules, other users' processes). A thread without capabilities (an ordinary
// user's) has nothing to drop.
func dropCapabilities(keep uint64) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("sandbox: capabilities: %w", err)
	}
	if data == [2]unix.CapUserData{} {
		return nil
	}
	// The bounding set first (it takes CAP_SETPCAP): an exec as root would otherwise get it all back.
	// Without CAP_SETPCAP the thread is not root, and no_new_privs keeps an exec from adding any.
	if data[0].Effective&(1<<unix.CAP_SETPCAP) != 0 {
		for c := 0; c <= lastCapability(); c++ {
			if keep&(1<<c) != 0 {
				continue
			}
			if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
				return fmt.Errorf("sandbox: drop capability %d: %w", c, err)
			}
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("sandbox: ambient capabilities: %w", err)
	}
	for i := range data {
		data[i].Inheritable = 0
		data[i].Permitted &= uint32(keep >> (32 * i))
		data[i].Effective &= uint32(keep >> (32 * i))
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("sandbox: capabilities: %w", err)
	}
	return nil
}

// lastCapability is the host kernel's highest capability, which may be newer than this program.
func lastCapability() int {
	data, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if n, perr := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && perr == nil && n >= 0 && n < 64 {
		return n
	}
	return unix.CAP_LAST_CAP
}
