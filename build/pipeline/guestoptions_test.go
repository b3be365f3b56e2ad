package pipeline

import (
	"testing"
	"time"

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
