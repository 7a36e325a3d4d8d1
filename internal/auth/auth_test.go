package auth

import (
	"context"
	"strings"
	"testing"
)

func TestHashAndVerify(t *testing.T) {
	t.Parallel()
	h := NewHasher(2)
	ctx := context.Background()
	enc, err := h.Hash(ctx, "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("unexpected encoding %q", enc)
	}
	if ok, err := h.Verify(ctx, SignIn, enc, "correct horse battery"); !ok || err != nil {
		t.Fatalf("the right password failed: %v", err)
	}
	if ok, _ := h.Verify(ctx, Suspect, enc, "correct horse batterY"); ok {
		t.Fatal("a wrong password passed")
	}
	if ok, _ := h.Verify(ctx, SignIn, "", "anything at all"); ok {
		t.Fatal("an unknown account passed")
	}
	other, _ := h.Hash(ctx, "correct horse battery")
	if other == enc {
		t.Fatal("two hashes of one password share a salt")
	}
}
