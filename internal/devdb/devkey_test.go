package devdb

import (
	"bytes"
	"os"
	"testing"

	"github.com/repcue/repcue/internal/auth"
)

// The development key is made once and then kept: tokens signed by a
// development server survive its restart.
func TestSigningKeyFileIsMadeOnceAndKept(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/go.mod", []byte("module x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	path, err := SigningKeyFile()
	if err != nil {
		t.Fatal(err)
	}
	if path != dir+"/.devdb/"+devKeyName {
		t.Fatalf("key at %s, want it in the checkout's .devdb/", path)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v (%v), want 0600", fi.Mode(), err)
	}
	if _, err := auth.LoadKey(path); err != nil {
		t.Fatalf("the server cannot load the key: %v", err)
	}
	first, _ := os.ReadFile(path)
	again, err := SigningKeyFile()
	if err != nil || again != path {
		t.Fatalf("second call: %s, %v", again, err)
	}
	if second, _ := os.ReadFile(path); !bytes.Equal(first, second) {
		t.Fatal("the key changed on the second call")
	}
	entries, _ := os.ReadDir(dir + "/.devdb")
	if len(entries) != 1 {
		t.Fatalf(".devdb holds %d files, want only the key", len(entries))
	}
}
