package auth

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
)

func TestRequestPathIsTheTargetAsSent(t *testing.T) {
	tests := []struct{ target, want string }{
		{"/uploads/a.txt", "/uploads/a.txt"},
		{"/uploads%2Falice/k|", "/uploads%2Falice/k|"},
		{"/nest/inner%2Falice/f{?x-id=PutObject", "/nest/inner%2Falice/f{"},
		{"/u/%e6%b0%b4/ü\"", "/u/%e6%b0%b4/ü\""},
		{"/u/a%2fb?uploads&q=%2F", "/u/a%2fb"},
		{"http://example.com/u/a%2Fb|?x=1", "/u/a%2Fb|"},
		{"http://example.com", "/"},
		{"*", "*"},
	}
	for _, tt := range tests {
		method := "PUT"
		if tt.target == "*" {
			method = "OPTIONS"
		}
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(method + " " + tt.target + " HTTP/1.1\r\nHost: h\r\n\r\n")))
		if err != nil {
			t.Fatalf("%q: %v", tt.target, err)
		}
		if got := RequestPath(r); got != tt.want {
			t.Errorf("RequestPath(%q) = %q, want %q", tt.target, got, tt.want)
		}
	}
	r, _ := http.NewRequest("PUT", "http://h/u/a%2Fb", nil)
	if got := RequestPath(r); got != "/u/a%2Fb" {
		t.Errorf("in-process request: %q", got)
	}
}
