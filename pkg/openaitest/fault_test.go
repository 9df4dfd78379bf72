package openaitest

import (
	"testing"
	"time"
)

func TestParseFault(t *testing.T) {
	tests := []struct {
		spec string
		want fault
		err  bool
	}{
		{spec: "", want: noFault},
		{spec: "status:429", want: fault{status: 429, cut: -1}},
		{spec: "delay:150ms", want: fault{delay: 150 * time.Millisecond, cut: -1}},
		{spec: "cut:0", want: fault{cut: 0}},
		{spec: "cut:3", want: fault{cut: 3}},
		{spec: "hang", want: fault{hang: true, cut: -1}},
		{spec: "slow:20ms", want: fault{slow: 20 * time.Millisecond, cut: -1}},
		{spec: " delay:1s , cut:2 ,slow:5ms", want: fault{delay: time.Second, cut: 2, slow: 5 * time.Millisecond}},
		{spec: "status:200", err: true},
		{spec: "status:abc", err: true},
		{spec: "status", err: true},
		{spec: "cut:-1", err: true},
		{spec: "cut", err: true},
		{spec: "delay:-5ms", err: true},
		{spec: "delay:soon", err: true},
		{spec: "hang:1s", err: true},
		{spec: "explode", err: true},
	}
	for _, tt := range tests {
		got, err := parseFault(tt.spec)
		if (err != nil) != tt.err {
			t.Errorf("parseFault(%q) error = %v, want error %v", tt.spec, err, tt.err)
			continue
		}
		if !tt.err && got != tt.want {
			t.Errorf("parseFault(%q) = %+v, want %+v", tt.spec, got, tt.want)
		}
	}
}
