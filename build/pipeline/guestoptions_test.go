package pipeline

import (
	"strings"
	"testing"
	"time"

	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/uml"
)

// TestGuestOptions: boot.mem, boot.sandbox and boot.timeout reach every boot's options, and no door
// (network, host folder, kernel arguments) is opened by them: the boots a person starts add those.
func TestGuestOptions(t *testing.T) {
	cfg := loadConfig(t, map[string]string{"HOME": t.TempDir(), "SUML_BOOT_MEM": "512M", "SUML_BOOT_SANDBOX": "strict", "SUML_BOOT_TIMEOUT": "7",
		"SUML_BOOT_HOSTFS": t.TempDir(), "SUML_BOOT_ARGS": "init=/bin/sh", "SUML_BOOT_NET": "user"}, nil)
	o := guestOptions(cfg, "/k/linux")
	if o.Kernel != "/k/linux" || o.Mem != "512M" || o.Sandbox != uml.Sandbox("strict") || o.Timeout != 7*time.Second {
		t.Errorf("options %+v", o)
	}
	if o.Hostfs != "" || o.Args != nil || o.Net != nil {
		t.Errorf("the settings opened a door by themselves: hostfs %q, args %q, net %+v", o.Hostfs, o.Args, o.Net)
	}
}

// TestBootNet: boot.net, boot.host_access and boot.forward become the guest's network, and a door
// asked for without a network is refused naming the setting.
func TestBootNet(t *testing.T) {
	tests := []struct {
		net, forward string
		hostAccess   bool
		transport    string // "" for none
		want         string // in the error
	}{
		{net: "", transport: ""},
		{net: "none", forward: "2222:22", want: "boot.forward and boot.host_access need a network"},
		{net: "none", hostAccess: true, want: "need a network"},
		{net: "user", forward: "2222:22", hostAccess: true, transport: "user"},
		{net: "uml:tuntap,,,tap0", transport: "tuntap,,,tap0"},
		{net: "user", forward: "22", want: "22"},
	}
	for _, tt := range tests {
		var cfg config.Config
		cfg.Boot.Net, cfg.Boot.Forward, cfg.Boot.HostAccess = tt.net, tt.forward, tt.hostAccess
		n, err := bootNet(cfg, "host")
		switch {
		case tt.want != "":
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%+v: %v, want %q", tt, err, tt.want)
			}
		case err != nil:
			t.Errorf("%+v: %v", tt, err)
		case tt.transport == "" && n != nil, tt.transport != "" && (n == nil || n.Transport != tt.transport || n.HostAccess != tt.hostAccess):
			t.Errorf("%+v: %+v", tt, n)
		}
	}
}
