package domain

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/uuid"
)

func TestFeedbackNoticeStaysSmall(t *testing.T) {
	t.Parallel()
	for _, text := range []string{
		"Great lockouts.",
		strings.Repeat("Keep the ribs down and drive through the heels. ", 40),
		strings.Repeat("ü", 2000), // no spaces to cut at
	} {
		n := FeedbackNotice(Feedback{ID: uuid.New(), SetID: uuid.New(), Text: text}, "Coach Kim")
		if r := utf8.RuneCountInString(n.Body); r > 140 || !utf8.ValidString(n.Body) {
			t.Fatalf("body of %d runes (valid UTF-8: %v)", r, utf8.ValidString(n.Body))
		}
		if len(text) <= 140 && n.Body != text {
			t.Fatalf("a short text was changed: %q", n.Body)
		}
		if len(text) > 140 && (!strings.HasSuffix(n.Body, "…") || !strings.HasPrefix(text, strings.TrimSuffix(n.Body, "…"))) {
			t.Fatalf("a long text is not cut with an ellipsis: %q", n.Body)
		}
	}
}
