package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// raiseFileLimit lifts this process's open-file limit to its hard limit: each
// socket is a file.
func raiseFileLimit(need int) error {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return err
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			return err
		}
	}
	if int(l.Cur) < need {
		return fmt.Errorf("%d sockets need an open-file limit of at least %d; this process may have %d (raise the hard limit: ulimit -Hn)", need-100, need, l.Cur)
	}
	return nil
}

// listenerPID finds the process listening on addr's port on this machine, by
// the socket's inode in /proc/net/tcp{,6} and the processes' open files.
func listenerPID(addr string) (int, error) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	port, _ := strconv.Atoi(p)
	want := fmt.Sprintf(":%04X", port)
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) > 9 && strings.HasSuffix(fs[1], want) && fs[3] == "0A" {
				inodes["socket:["+fs[9]+"]"] = true
			}
		}
	}
	if len(inodes) == 0 {
		return 0, fmt.Errorf("nothing listens on port %d", port)
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*/fd")
	for _, d := range dirs {
		fds, _ := os.ReadDir(d)
		for _, fd := range fds {
			if link, err := os.Readlink(filepath.Join(d, fd.Name())); err == nil && inodes[link] {
				return strconv.Atoi(filepath.Base(filepath.Dir(d)))
			}
		}
	}
	return 0, fmt.Errorf("no process of ours listens on port %d", port)
}

// procStat is a process's CPU time (seconds) and resident memory (bytes).
type procStat struct {
	cpu      float64
	rss, hwm int64
	threads  int
}

func readProc(pid int) (procStat, error) {
	var s procStat
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// Fields after the command (which may hold spaces) start after the last ')'.
	fs := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	utime, _ := strconv.ParseFloat(fs[11], 64)
	stime, _ := strconv.ParseFloat(fs[12], 64)
	s.cpu = (utime + stime) / 100 // USER_HZ is 100 on Linux
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		fs := strings.Fields(v)
		if len(fs) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(fs[0], 10, 64)
		switch k {
		case "VmRSS":
			s.rss = n << 10
		case "VmHWM":
			s.hwm = n << 10
		case "Threads":
			s.threads = int(n)
		}
	}
	return s, nil
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	fs := strings.Fields(string(b))
	if len(fs) < 3 {
		return "?"
	}
	return strings.Join(fs[:3], " ")
}

// nodes are the server processes a run drives: the one listening on the
// athletes' address and, when the coaches' sockets go elsewhere, the one
// listening there (a second node of a cluster). Their CPU and peak RSS are
// reported per node.
type nodes []*nodeWatch

type nodeWatch struct {
	addr, role string
	pid        int
	cpu0, cpu  float64
	peak       int64
	io0, io    [2]int64 // bytes read and written (rchar, wchar: sockets included)
	secs       float64
}

// nodeFigures is one node's share of a run.
type nodeFigures struct {
	Addr   string  `json:"addr"`
	Role   string  `json:"role"` // athletes, coaches, or both
	PID    int     `json:"pid"`
	CPU    float64 `json:"cpu_cores"`
	RSSMiB float64 `json:"rss_max_mib"`
	// Bytes through read/write calls (sockets included), per second: for the
	// NATS server, the bus traffic both ways.
	ReadKiBs  float64 `json:"read_kib_per_s"`
	WriteKiBs float64 `json:"write_kib_per_s"`
}

func serverNodes(athletes, coaches string) nodes {
	var ns nodes
	add := func(addr, role string) {
		pid, err := listenerPID(addr)
		if err != nil {
			fmt.Fprintf(os.Stderr, "loadgen: no server CPU/RSS figures for %s: %v\n", addr, err)
			return
		}
		for _, n := range ns {
			if n.pid == pid { // one process on both addresses
				n.role = "athletes+coaches"
				return
			}
		}
		ns = append(ns, &nodeWatch{addr: addr, role: role, pid: pid})
	}
	if athletes == coaches {
		add(athletes, "athletes+coaches")
	} else {
		add(athletes, "athletes")
		add(coaches, "coaches")
	}
	return ns
}

func (ns nodes) begin() {
	for _, n := range ns {
		st, _ := readProc(n.pid)
		n.cpu0, n.peak, n.io0 = st.cpu, st.rss, readIO(n.pid)
	}
}

// sample records each node's RSS and says it in MiB ("a+b" for two nodes).
func (ns nodes) sample() string {
	var parts []string
	for _, n := range ns {
		st, _ := readProc(n.pid)
		n.peak = max(n.peak, st.rss)
		parts = append(parts, fmt.Sprintf("%.0f", float64(st.rss)/(1<<20)))
	}
	if len(parts) == 0 {
		return "?"
	}
	return strings.Join(parts, "+")
}

func (ns nodes) end(elapsed time.Duration) {
	ns.sample()
	for _, n := range ns {
		st, _ := readProc(n.pid)
		n.cpu = (st.cpu - n.cpu0) / elapsed.Seconds()
		n.io, n.secs = readIO(n.pid), elapsed.Seconds()
	}
}

func (ns nodes) figures() []nodeFigures {
	out := []nodeFigures{}
	for _, n := range ns {
		f := nodeFigures{Addr: n.addr, Role: n.role, PID: n.pid, CPU: n.cpu, RSSMiB: float64(n.peak) / (1 << 20)}
		if n.secs > 0 {
			f.ReadKiBs, f.WriteKiBs = float64(n.io[0]-n.io0[0])/1024/n.secs, float64(n.io[1]-n.io0[1])/1024/n.secs
		}
		out = append(out, f)
	}
	return out
}

// readIO is a process's bytes read and written through read/write calls
// (/proc/PID/io: rchar, wchar), zero when they cannot be read.
func readIO(pid int) [2]int64 {
	var io [2]int64
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return io
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		switch k {
		case "rchar":
			io[0] = n
		case "wchar":
			io[1] = n
		}
	}
	return io
}
