package rt

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sensorbus/sensorbus/internal/sys"
	"github.com/sensorbus/sensorbus/testing/leakcheck"
	"github.com/sensorbus/sensorbus/testing/proctest"
)

const childEnv = "SENSORBUS_RT_TEST_CHILD"

func TestMain(m *testing.M) {
	if role := os.Getenv(childEnv); role != "" {
		os.Exit(runChild(role))
	}
	os.Exit(leakcheck.Run(m))
}

// taskStatus returns a field of /proc/self/task/TID/status.
func taskStatus(t *testing.T, tid int, field string) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/status", tid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %s in status of task %d", field, tid)
	return ""
}

// Whichever thread Run used, it ends up back at the process's affinity.
func TestRunRestoresAffinity(t *testing.T) {
	allowed, err := allowedCPUs()
	if err != nil || len(allowed) < 2 {
		t.Skipf("needs two allowed CPUs, have %v (%v)", allowed, err)
	}
	var tid int
	for range 20 { // enough runs that one lands on the main thread
		if err := Run(Thread{CPUs: allowed[:1]}, func(id int) error { tid = id; return nil }); err != nil {
			t.Fatal(err)
		}
		if tid == os.Getpid() {
			if got, _ := sys.Affinity(tid); FormatCPUList(got) != FormatCPUList(allowed) {
				t.Fatalf("main thread left pinned to %v", got)
			}
		}
	}
}

func TestRunPinsThread(t *testing.T) {
	allowed, err := sys.Affinity(0)
	if err != nil || len(allowed) < 2 {
		t.Skipf("needs two allowed CPUs, have %v (%v)", allowed, err)
	}
	target := allowed[len(allowed)-1]
	err = Run(Thread{CPUs: []int{target}}, func(tid int) error {
		got, err := sys.Affinity(tid)
		if err != nil {
			return err
		}
		if len(got) != 1 || got[0] != target {
			return fmt.Errorf("sched_getaffinity says %v, want [%d]", got, target)
		}
		if s := taskStatus(t, tid, "Cpus_allowed_list"); s != strconv.Itoa(target) {
			return fmt.Errorf("/proc says Cpus_allowed_list %q, want %d", s, target)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func requireRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (CI runs as root)")
	}
}

func TestRunFIFOAndThreadIsNotReused(t *testing.T) {
	requireRoot(t)
	var fifoTid int
	err := Run(Thread{Priority: 10}, func(tid int) error {
		fifoTid = tid
		policy, prio, err := sys.Scheduler(tid)
		if err != nil {
			return err
		}
		if policy != sys.SchedFIFO || prio != 10 {
			return fmt.Errorf("policy %d priority %d, want SCHED_FIFO 10", policy, prio)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The FIFO thread exited with its goroutine, or — the main thread,
	// which cannot exit and which the runtime parks for good — it is back
	// under the normal scheduler with its original affinity.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(fmt.Sprintf("/proc/self/task/%d", fifoTid)); os.IsNotExist(err) {
			break
		}
		if fifoTid == os.Getpid() {
			policy, _, err := sys.Scheduler(fifoTid)
			if err != nil || policy != sys.SchedOther {
				t.Fatalf("main thread left with policy %d (%v) after Run", policy, err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("thread %d that ran SCHED_FIFO still exists", fifoTid)
		}
		time.Sleep(time.Millisecond)
	}
	// …and no goroutine lands on a thread that is still SCHED_FIFO.
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			if policy, _, err := sys.Scheduler(0); err == nil && policy == sys.SchedFIFO {
				errs <- fmt.Errorf("thread %d runs a goroutine under SCHED_FIFO", sys.Gettid())
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestRunRefusesBadCPUsAndPriorities(t *testing.T) {
	ran := false
	fn := func(int) error { ran = true; return nil }
	if err := Run(Thread{CPUs: []int{4095}}, fn); !errors.Is(err, ErrBadCPU) || !strings.Contains(err.Error(), "not online") {
		t.Errorf("CPU 4095: %v", err)
	}
	if err := Run(Thread{Priority: 100}, fn); err == nil {
		t.Error("priority 100 accepted")
	}
	if ran {
		t.Error("fn ran despite a refused setup")
	}
}

func TestThreadStats(t *testing.T) {
	err := Run(Thread{}, func(tid int) error {
		for range 5 {
			time.Sleep(time.Millisecond) // voluntary switches
		}
		// Spin until the kernel has counted 10ms of CPU for this thread:
		// its schedstat must see the time, however loaded the machine.
		deadline := time.Now().Add(30 * time.Second)
		for {
			st, err := ReadThreadStats(tid)
			if err != nil {
				return err
			}
			if st.RunTime >= 10*time.Millisecond {
				if st.Voluntary == 0 || st.Timeslices == 0 {
					return fmt.Errorf("stats %+v after sleeping and spinning", st)
				}
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("schedstat counted only %v of CPU in 30 s of spinning", st.RunTime)
			}
			for start := time.Now(); time.Since(start) < time.Millisecond; {
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCheckReport(t *testing.T) {
	r := Check()
	names := map[string]Item{}
	for _, it := range r.Items {
		names[it.Name] = it
		if it.Value == "" || it.Verdict == "" {
			t.Errorf("item %+v is not filled in", it)
		}
		if (it.Verdict == Fail || it.Verdict == Warn) && it.Advice == "" && it.Name != "online CPUs" {
			t.Errorf("item %q is %s without advice", it.Name, it.Verdict)
		}
	}
	for _, want := range []string{"kernel", "online CPUs", "allowed CPUs", "isolated CPUs", "nohz_full CPUs", "SCHED_FIFO allowed", "memory locking", "capabilities", "RT throttling", "CPU frequency governor"} {
		if _, ok := names[want]; !ok {
			t.Errorf("report has no %q item", want)
		}
	}
	if os.Geteuid() == 0 && names["SCHED_FIFO allowed"].Verdict != OK {
		t.Errorf("root but SCHED_FIFO item is %+v", names["SCHED_FIFO allowed"])
	}
	var text strings.Builder
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, it := range r.Items {
		if !strings.Contains(text.String(), it.Name) {
			t.Errorf("text report lacks %q:\n%s", it.Name, text.String())
		}
	}
	j, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(j, &back); err != nil || len(back.Items) != len(r.Items) {
		t.Fatalf("JSON report %s does not round-trip: %v", j, err)
	}
	t.Logf("\n%s", text.String())
}

func TestCPUList(t *testing.T) {
	for in, want := range map[string]string{"0": "0", "0-3,6": "0-3,6", "5,1,2,3": "1-3,5", "": "none"} {
		cpus, err := ParseCPUList(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := FormatCPUList(cpus); got != want {
			t.Errorf("%q → %v → %q, want %q", in, cpus, got, want)
		}
	}
	for _, bad := range []string{"x", "3-1", "1-", "-1"} {
		if _, err := ParseCPUList(bad); err == nil {
			t.Errorf("ParseCPUList(%q) accepted", bad)
		}
	}
}

func TestTuneGCRestores(t *testing.T) {
	// debug.Set* return the previous setting: read the settings through them.
	percent := func() int { p := debug.SetGCPercent(-1); debug.SetGCPercent(p); return p }
	limit := func() int64 { return debug.SetMemoryLimit(-1) } // a negative limit only reads
	origPercent, origLimit := percent(), limit()
	restore := TuneGC(-1, 1<<30)
	if p, l := percent(), limit(); p != -1 || l != 1<<30 {
		t.Fatalf("after TuneGC(-1, 1 GiB): percent %d, limit %d", p, l)
	}
	restore()
	if p, l := percent(), limit(); p != origPercent || l != origLimit {
		t.Fatalf("after restore: percent %d, limit %d; want %d, %d", p, l, origPercent, origLimit)
	}
}

// Unprivileged children: the EPERM paths with the real kernel's refusal.
func runChild(role string) int {
	var err error
	switch role {
	case "fifo":
		err = Run(Thread{Priority: 20}, func(int) error { return nil })
	case "pin1":
		err = Run(Thread{CPUs: []int{1}}, func(int) error { return nil })
		if errors.Is(err, ErrBadCPU) {
			fmt.Println(err)
			return 4
		}
	case "mlock":
		// A tiny limit, so that mlockall fails whatever the default is.
		syscall.Setrlimit(8 /* RLIMIT_MEMLOCK */, &syscall.Rlimit{Cur: 64 << 10, Max: 64 << 10})
		err = LockMemory(false)
	default:
		return 2
	}
	if err == nil {
		fmt.Println("allowed")
		return 0
	}
	fmt.Println(err)
	if errors.Is(err, ErrNotPermitted) {
		return 3
	}
	return 1
}

func runUnprivileged(t *testing.T, role string) (string, int) {
	t.Helper()
	requireRoot(t)
	// The test binary sits in a directory only root may enter.
	bin := proctest.CopyBinary(t)
	dir := filepath.Dir(bin)
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), childEnv+"="+role)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.Output()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out)), code
}

func TestFIFONotPermittedNamesTheFix(t *testing.T) {
	out, code := runUnprivileged(t, "fifo")
	if code != 3 {
		t.Fatalf("unprivileged SCHED_FIFO: exit %d, %q; want ErrNotPermitted", code, out)
	}
	for _, want := range []string{"SCHED_FIFO priority 20", "CAP_SYS_NICE", "RLIMIT_RTPRIO", "setcap cap_sys_nice+ep", "LimitRTPRIO"} {
		if !strings.Contains(out, want) {
			t.Errorf("message %q lacks %q", out, want)
		}
	}
}

func TestMlockNotPermittedNamesTheFix(t *testing.T) {
	out, code := runUnprivileged(t, "mlock")
	if code != 3 {
		t.Fatalf("unprivileged mlockall: exit %d, %q; want ErrNotPermitted", code, out)
	}
	for _, want := range []string{"mlockall", "CAP_IPC_LOCK", "RLIMIT_MEMLOCK is 65536", "LimitMEMLOCK"} {
		if !strings.Contains(out, want) {
			t.Errorf("message %q lacks %q", out, want)
		}
	}
}

// A CPU outside the process's allowed set (here narrowed by taskset) is
// refused with a message that says so.
func TestRunRefusesCPUOutsideAllowedSet(t *testing.T) {
	online, err := onlineCPUs()
	if err != nil || len(online) < 2 || online[1] != 1 {
		t.Skip("needs CPUs 0 and 1 online")
	}
	taskset, err := exec.LookPath("taskset")
	if err != nil {
		t.Skip("taskset not installed")
	}
	cmd := exec.Command(taskset, "-c", "0", os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=pin1")
	out, err := cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 4 || !strings.Contains(string(out), "outside this process's allowed set 0") {
		t.Fatalf("pinning to CPU 1 under taskset -c 0: %v, %q", err, out)
	}
}
