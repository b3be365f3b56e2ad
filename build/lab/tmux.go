package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/host"
	"github.com/simple-uml/simple-uml/build/run"
)

// OpenTmux opens a detached tmux session with a window per guest, each running console with the
// lab's and the guest's names after it, in folder dir with env (KEY=VALUE) set; an error when there
// is no tmux.
func (r *Running) OpenTmux(ctx context.Context, dir string, env, console []string) (string, error) {
	if _, err := host.LookPath("tmux"); err != nil {
		return "", errors.New("tmux is not installed")
	}
	session := "suml-lab-" + r.Lab.Name
	if stale := renameStaleTmux(ctx, session); stale != "" {
		// Closed once this lab's session keeps the tmux server up: a server whose last session
		// closes exits, and would take a new session's later windows with it.
		defer CloseTmux(stale)
	}
	var setEnv []string
	// The session names its lab's socket folder, by which the next lab of that name knows a session
	// a killed lab left (closeStaleTmux).
	for _, kv := range append(slices.Clone(env), sessionSocketsVar+"="+r.sockets.Path) {
		setEnv = append(setEnv, "-e", kv)
	}
	for i, g := range r.Lab.Guests {
		// The window stays after its console closes, so that a person sees why.
		attach := fmt.Sprintf("%s; echo; echo '[console of %s closed; Enter closes this window]'; read _",
			run.Cmdline(nil, append(slices.Clone(console), r.Lab.Name, g.Name)), g.Name)
		args := append([]string{"tmux", "new-window", "-d", "-t", session, "-n", g.Name, "-c", dir}, setEnv...)
		if i == 0 {
			args = append([]string{"tmux", "new-session", "-d", "-s", session, "-n", g.Name, "-c", dir}, setEnv...)
		}
		args = append(args, attach)
		err := run.Run(ctx, run.Cmd{Args: args, Echo: io.Discard})
		for try := 0; err != nil && i == 0 && try < 3; try++ {
			// A tmux server whose last session just ended exits, and a client that reached it then
			// fails ("server exited unexpectedly"); the next one starts a new server.
			time.Sleep(100 * time.Millisecond)
			err = run.Run(ctx, run.Cmd{Args: args, Echo: io.Discard})
		}
		if err != nil {
			CloseTmux(session)
			return "", err
		}
	}
	return session, nil
}

// CloseTmux ends a session OpenTmux opened.
func CloseTmux(session string) {
	run.Run(context.Background(), run.Cmd{Args: []string{"tmux", "kill-session", "-t", session}, Echo: io.Discard})
}

// sessionSocketsVar, in a lab's tmux session's environment, is the lab's socket folder.
const sessionSocketsVar = "SUML_LAB_SOCKETS"

// renameStaleTmux renames the session of a lab that ended without closing it (kill -9), whose socket
// folder is gone as the next lab's private folder removed it, and returns its new name; "" when
// there is none. A running lab's session is left.
func renameStaleTmux(ctx context.Context, session string) string {
	out, err := run.Output(ctx, run.Cmd{Args: []string{"tmux", "show-environment", "-t", session, sessionSocketsVar}})
	if err != nil {
		return "" // no such session
	}
	if _, sockets, _ := strings.Cut(out, "="); sockets != "" && files.Exists(sockets) {
		return ""
	}
	stale := fmt.Sprintf("%s-stale-%d", session, os.Getpid())
	if run.Run(ctx, run.Cmd{Args: []string{"tmux", "rename-session", "-t", session, stale}, Echo: io.Discard}) != nil {
		return ""
	}
	return stale
}
