package kbuild

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/simple-uml/simple-uml/build/run"
)

func TestMakeArgsAndEnv(t *testing.T) {
	o := Options{Src: "/src", Out: "/out", Subarch: "x86_64", Jobs: 4, CCWrapper: "ccache",
		Timestamp: time.Date(2026, 11, 14, 12, 56, 1, 0, time.UTC)}
	got := strings.Join(o.MakeArgs("linux"), " ")
	maps := "-ffile-prefix-map=/src=/usr/src/linux -ffile-prefix-map=/out=/usr/src/linux"
	want := "make -C /src O=/out ARCH=um SUBARCH=x86_64 -j4 CC=ccache gcc HOSTCC=ccache gcc KCFLAGS=" + maps + " KAFLAGS=" + maps + " linux"
	if got != want {
		t.Errorf("MakeArgs = %s\nwant        %s", got, want)
	}
	env := strings.Join(o.Env(), "\n")
	for _, w := range []string{"KBUILD_BUILD_TIMESTAMP=Sat, 14 Nov 2026 12:56:01 +0000", "KBUILD_BUILD_USER=simple-uml", "KBUILD_BUILD_HOST=simple-uml", "KBUILD_BUILD_VERSION=1"} {
		if !strings.Contains(env, w) {
			t.Errorf("env lacks %s", w)
		}
	}
	// distcc is told to run gcc by its plain name (the kernel's banner names it); nobody else is.
	if strings.Contains(env, "DISTCC") || !slices.Contains((Options{CCWrapper: "distcc"}).Env(), "DISTCC_NO_REWRITE_CROSS=1") {
		t.Errorf("DISTCC_NO_REWRITE_CROSS: with ccache %q, with distcc %q", env, (Options{CCWrapper: "distcc"}).Env())
	}
	if got := (Options{Jobs: 0}).MakeArgs(); got[6] != "-j1" {
		t.Errorf("jobs 0 gave %s", got[6])
	}
}

func TestExplainKeepsErrorLines(t *testing.T) {
	tail := []string{"  CC      fs/ext4/inode.o", "fs/ext4/inode.c:12:1: error: expected ';'", "  CC      fs/ext4/super.o",
		"make[4]: *** [scripts/Makefile.build:229: fs/ext4/inode.o] Error 1", "make: *** [Makefile:224: __sub-make] Error 2"}
	for i := 0; i < 30; i++ {
		tail = append([]string{"  CC      noise.o"}, tail...)
	}
	err := explain(&run.Error{Cmdline: "make linux", Tail: tail, Err: errors.New("exit status 2")})
	msg := err.Error()
	if !strings.Contains(msg, "error: expected ';'") || !strings.Contains(msg, "__sub-make] Error 2") {
		t.Errorf("explanation lacks the error lines:\n%s", msg)
	}
	if strings.Count(msg, "noise.o") > 8 {
		t.Errorf("explanation keeps too much noise:\n%s", msg)
	}
}
