package test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// pjdfstestScript builds pjdfstest from the shared third-party tree and
// runs it with prove; its path is relative to the repository root (CI has
// ../shared beside the repository too), and so, from test/, one more up.
var pjdfstestScript = filepath.Join("..", "..", "shared", "tools", "pjdfstest.sh")

// pjdfstestExpected lists the subtests expected to fail, each with why.
const pjdfstestExpected = "testdata/pjdfstest-expected-failures.txt"

// pjdfstestTestsEnv restricts TestPjdfstest to some groups or files of
// pjdfstest (for example "chmod rename/09.t") while working on them; the
// expected failures of the others are then not checked. CI runs them all.
const pjdfstestTestsEnv = "STOFUSE_PJDFSTEST_TESTS"

// TestPjdfstest runs pjdfstest, the POSIX conformance suite, as root
// inside files/default of a mount made with --allow-other (pjdfstest acts
// as other users too), and compares its results subtest by subtest with
// the expected failures listed in testdata: a failure that is not listed,
// or a listed subtest that passes, fails the test and is named. It takes
// most of the suite's time (about 15 minutes here: pjdfstest sleeps to
// see times change), so run it with -timeout 30m, as test/run.sh does.
func TestPjdfstest(t *testing.T) {
	requireFuse(t)
	requireRoot(t)
	script := requirePjdfstest(t)
	expected, err := readExpectedFailures(pjdfstestExpected)
	if err != nil {
		t.Fatal(err)
	}
	s := newStore(t)
	m := s.mount("--allow-other")
	reachable(t, m)
	dir := filepath.Join(m.dir, "files", "default", "pjdfstest")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// prove prints every subtest's line (TAP) with --verbose, which it
	// also takes from ~/.proverc: the script's command line is its own.
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, ".proverc"), []byte("--verbose\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := strings.Fields(os.Getenv(pjdfstestTestsEnv))
	cmd := exec.Command("bash", append([]string{script, dir}, tests...)...)
	cmd.Env = append(os.Environ(), "HOME="+home)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run() // prove fails when any subtest does: the list decides
	results, err := parseProve(stdout.Bytes())
	if err != nil || len(results) == 0 {
		t.Fatalf("pjdfstest.sh %s: %v; no results read (%v)\nstderr:\n%s", strings.Join(tests, " "), runErr, err, lastLines(stderr.String(), 30))
	}
	if len(tests) > 0 {
		expected = expected.only(results)
	}
	report := compareExpected(results, expected)
	all, err := pjdfstestFiles(script)
	if err != nil {
		t.Fatal(err)
	}
	if notRun := notRunFiles(all, tests, results); len(notRun) > 0 {
		report.problems = append(report.problems, fmt.Sprintf("%d test files of pjdfstest did not run (prove stops at a Bail out!): %s",
			len(notRun), strings.Join(notRun, " ")))
	}
	t.Logf("pjdfstest: %d of %d subtests pass (%.2f%%) in %d files; %d expected to fail",
		report.passed, report.total, 100*float64(report.passed)/float64(report.total), len(results), expected.count())
	for _, problem := range report.problems {
		t.Error(problem)
	}
}

// requirePjdfstest returns the script's path, once it and the tools it
// needs are there; with CI=true, anything missing is a failure.
func requirePjdfstest(t *testing.T) string {
	t.Helper()
	missing := func(what string) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and %s: pjdfstest must run in CI (test/run.sh installs the tools; ../shared must be beside the repository)", what)
		}
		t.Skip(what)
	}
	if _, err := os.Stat(pjdfstestScript); err != nil {
		missing(fmt.Sprintf("no pjdfstest script: %v", err))
	}
	for _, tool := range []string{"bash", "autoreconf", "automake", "gcc", "make", "prove"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing(fmt.Sprintf("no %s, which pjdfstest.sh needs", tool))
		}
	}
	script, err := filepath.Abs(pjdfstestScript)
	if err != nil {
		t.Fatal(err)
	}
	return script
}

// pjdfstestFiles lists the test files of the pjdfstest source that the
// script builds (the one tarball in ../third_party beside it), as prove
// names them ("chmod/00.t").
func pjdfstestFiles(script string) ([]string, error) {
	tarballs, err := filepath.Glob(filepath.Join(filepath.Dir(script), "..", "third_party", "pjdfstest-*.tar.gz"))
	if err != nil || len(tarballs) != 1 {
		return nil, fmt.Errorf("want one pjdfstest tarball beside %s, found %v (%v)", script, tarballs, err)
	}
	f, err := os.Open(tarballs[0])
	if err != nil {
		return nil, err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tarballs[0], err)
	}
	var files []string
	archive := tar.NewReader(gz)
	for {
		h, err := archive.Next()
		if err == io.EOF {
			return files, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", tarballs[0], err)
		}
		if m := pjdfstestFile.FindStringSubmatch(h.Name); m != nil {
			files = append(files, m[1])
		}
	}
}

var pjdfstestFile = regexp.MustCompile(`^pjdfstest/tests/([^/]+/[^/]+\.t)$`)

// notRunFiles returns the test files of all that the arguments ask for
// (all of them when there are none) and that have no result.
func notRunFiles(all, tests []string, results map[string]*proveResult) []string {
	var notRun []string
	for _, file := range all {
		asked := len(tests) == 0 || slices.ContainsFunc(tests, func(test string) bool {
			return test == file || strings.TrimSuffix(test, "/") == filepath.Dir(file)
		})
		if _, ran := results[file]; asked && !ran {
			notRun = append(notRun, file)
		}
	}
	return notRun
}

// proveResult is what one test file of pjdfstest did: how many subtests
// it planned, and which failed, with their lines. A subtest that failed
// as pjdfstest expects on Linux (TODO) is not a failure.
type proveResult struct {
	planned int
	failed  map[int]string // subtest number -> its TAP line
}

var (
	proveFile = regexp.MustCompile(`/tests/(\S+\.t) \.\.`)
	provePlan = regexp.MustCompile(`^1\.\.(\d+)`)
	proveLine = regexp.MustCompile(`^(not )?ok (\d+)\b(.*)$`)
)

// parseProve reads the output of prove --verbose: for each test file, its
// plan and its subtests' results. A subtest that a file planned but never
// reported (the file died) is a failure.
func parseProve(out []byte) (map[string]*proveResult, error) {
	results := make(map[string]*proveResult)
	seen := make(map[int]bool)
	var file string
	var current *proveResult
	finish := func() error {
		if current == nil {
			return nil
		}
		if current.planned == 0 {
			return fmt.Errorf("%s: no plan (1..N) in prove's output", file)
		}
		for n := 1; n <= current.planned; n++ {
			if !seen[n] {
				current.failed[n] = "not run (the test file stopped)"
			}
		}
		return nil
	}
	scanner := bufio.NewScanner(bytes.NewReader(out))
	scanner.Buffer(make([]byte, 1<<20), 1<<20)
	for scanner.Scan() {
		line := scanner.Text()
		if m := proveFile.FindStringSubmatch(line); m != nil {
			if err := finish(); err != nil {
				return nil, err
			}
			file, current, seen = m[1], &proveResult{failed: make(map[int]string)}, make(map[int]bool)
			results[file] = current
			continue
		}
		if current == nil {
			continue
		}
		if m := provePlan.FindStringSubmatch(line); m != nil {
			current.planned, _ = strconv.Atoi(m[1])
			continue
		}
		m := proveLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[2])
		seen[n] = true
		if m[1] != "" && !strings.Contains(m[3], "# TODO") {
			current.failed[n] = line
		}
	}
	if err := scanner.Err(); err != nil {
		return nil, err
	}
	return results, finish()
}

// expectedFailures are the subtests listed as expected to fail: by test
// file, subtest number -> why.
type expectedFailures map[string]map[int]string

// readExpectedFailures reads the list: one line per group of subtests of a
// file, "FILE.t NUMBERS REASON", NUMBERS as prove prints them (1,3-5), and
// a reason that says why in a line; # starts a comment line.
func readExpectedFailures(path string) (expectedFailures, error) {
	body, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	expected := make(expectedFailures)
	for i, line := range strings.Split(string(body), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.SplitN(line, " ", 3)
		if len(fields) < 3 || strings.TrimSpace(fields[2]) == "" {
			return nil, fmt.Errorf("%s:%d: want FILE.t NUMBERS REASON, got %q", path, i+1, line)
		}
		numbers, err := parseNumbers(fields[1])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, i+1, err)
		}
		if expected[fields[0]] == nil {
			expected[fields[0]] = make(map[int]string)
		}
		for _, n := range numbers {
			if _, twice := expected[fields[0]][n]; twice {
				return nil, fmt.Errorf("%s:%d: %s %d is listed twice", path, i+1, fields[0], n)
			}
			expected[fields[0]][n] = strings.TrimSpace(fields[2])
		}
	}
	return expected, nil
}

// parseNumbers parses "1,3-5" into 1 3 4 5.
func parseNumbers(s string) ([]int, error) {
	var numbers []int
	for _, part := range strings.Split(s, ",") {
		from, to, isRange := strings.Cut(part, "-")
		first, err := strconv.Atoi(from)
		last := first
		if err == nil && isRange {
			last, err = strconv.Atoi(to)
		}
		if err != nil || first < 1 || last < first {
			return nil, fmt.Errorf("bad subtest numbers %q (want numbers and ranges like 1,3-5)", s)
		}
		for n := first; n <= last; n++ {
			numbers = append(numbers, n)
		}
	}
	return numbers, nil
}

// formatNumbers writes numbers as ranges, as the list has them.
func formatNumbers(numbers []int) string {
	slices.Sort(numbers)
	var parts []string
	for i := 0; i < len(numbers); {
		j := i
		for j+1 < len(numbers) && numbers[j+1] == numbers[j]+1 {
			j++
		}
		if j == i {
			parts = append(parts, strconv.Itoa(numbers[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", numbers[i], numbers[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// only keeps the entries of the files that ran.
func (e expectedFailures) only(results map[string]*proveResult) expectedFailures {
	kept := make(expectedFailures)
	for file, numbers := range e {
		if _, ran := results[file]; ran {
			kept[file] = numbers
		}
	}
	return kept
}

func (e expectedFailures) count() int {
	count := 0
	for _, numbers := range e {
		count += len(numbers)
	}
	return count
}

type pjdfstestReport struct {
	total, passed int
	problems      []string
}

// maxNewFailures bounds how many new failures a report shows one by one.
const maxNewFailures = 40

// compareExpected compares results with the expected failures: every
// failure must be listed, and every listed subtest must fail.
func compareExpected(results map[string]*proveResult, expected expectedFailures) pjdfstestReport {
	var report pjdfstestReport
	var unlisted []string
	files := make([]string, 0, len(results))
	for file := range results {
		files = append(files, file)
	}
	slices.Sort(files)
	for _, file := range files {
		r := results[file]
		report.total += r.planned
		report.passed += r.planned - len(r.failed)
		var nowPass []int
		for n := range expected[file] {
			if _, failed := r.failed[n]; !failed {
				nowPass = append(nowPass, n)
			}
		}
		if len(nowPass) > 0 {
			report.problems = append(report.problems, fmt.Sprintf("%s %s: listed in %s as expected to fail, but passed: take them off the list",
				file, formatNumbers(nowPass), pjdfstestExpected))
		}
		numbers := make([]int, 0, len(r.failed))
		for n := range r.failed {
			numbers = append(numbers, n)
		}
		slices.Sort(numbers)
		for _, n := range numbers {
			if _, listed := expected[file][n]; !listed {
				unlisted = append(unlisted, fmt.Sprintf("%s %d: %s", file, n, r.failed[n]))
			}
		}
	}
	for file := range expected {
		if _, ran := results[file]; !ran {
			report.problems = append(report.problems, fmt.Sprintf("%s: listed in %s, but pjdfstest has no such test file", file, pjdfstestExpected))
		}
	}
	if len(unlisted) > 0 {
		shown := unlisted[:min(len(unlisted), maxNewFailures)]
		more := ""
		if len(unlisted) > len(shown) {
			more = fmt.Sprintf("\n... and %d more", len(unlisted)-len(shown))
		}
		report.problems = append(report.problems, fmt.Sprintf("%d subtests failed that %s does not list:\n%s%s",
			len(unlisted), pjdfstestExpected, strings.Join(shown, "\n"), more))
	}
	return report
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// TestPjdfstestComparison: how prove's output is read and held to the
// list: TODO failures are pjdfstest's own expectations, a file that stops
// early fails the subtests it never ran, a file that never ran (prove
// stops at a Bail out!) is found, and both a new failure and a listed
// subtest that passes are named.
func TestPjdfstestComparison(t *testing.T) {
	out := []byte(`/tmp/tmp.x/pjdfstest/tests/chmod/00.t .. 
1..5
ok 1
not ok 2 - tried 'chmod a 0644', expected 0, got EPERM
not ok 3 # TODO Linux does not
ok 4
not ok 5
Failed 2/5 subtests
/tmp/tmp.x/pjdfstest/tests/link/01.t .. 
1..4
ok 1
not ok 2 - tried 'link a b', expected 0, got EPERM
Dubious, test returned 1
Test Summary Report
`)
	results, err := parseProve(out)
	if err != nil {
		t.Fatal(err)
	}
	failed := func(file string) string {
		numbers := make([]int, 0)
		for n := range results[file].failed {
			numbers = append(numbers, n)
		}
		return formatNumbers(numbers)
	}
	if len(results) != 2 || failed("chmod/00.t") != "2,5" || failed("link/01.t") != "2-4" || results["link/01.t"].failed[3] != "not run (the test file stopped)" {
		t.Fatalf("parsed %d files: chmod/00.t failed %s, link/01.t failed %s", len(results), failed("chmod/00.t"), failed("link/01.t"))
	}
	list := filepath.Join(t.TempDir(), "list")
	os.WriteFile(list, []byte("# a comment\nchmod/00.t 2,4 a reason\nlink/01.t 2-4 hard links\nmkdir/00.t 1 not run here\n"), 0o644)
	expected, err := readExpectedFailures(list)
	if err != nil {
		t.Fatal(err)
	}
	report := compareExpected(results, expected)
	if report.total != 9 || report.passed != 4 {
		t.Errorf("counted %d of %d passed, want 4 of 9", report.passed, report.total)
	}
	want := []string{
		"chmod/00.t 4: listed in testdata/pjdfstest-expected-failures.txt as expected to fail, but passed: take them off the list",
		"mkdir/00.t: listed in testdata/pjdfstest-expected-failures.txt, but pjdfstest has no such test file",
		"1 subtests failed that testdata/pjdfstest-expected-failures.txt does not list:\nchmod/00.t 5: not ok 5",
	}
	if !slices.Equal(report.problems, want) {
		t.Errorf("problems:\n%q\nwant\n%q", report.problems, want)
	}
	all := []string{"chmod/00.t", "chmod/01.t", "link/01.t", "open/00.t"}
	if got := notRunFiles(all, nil, results); !slices.Equal(got, []string{"chmod/01.t", "open/00.t"}) {
		t.Errorf("files not run of all: %q", got)
	}
	if got := notRunFiles(all, []string{"chmod", "link/01.t"}, results); !slices.Equal(got, []string{"chmod/01.t"}) {
		t.Errorf("files not run of chmod and link/01.t: %q", got)
	}
	for _, bad := range []string{"chmod/00.t 2\n", "chmod/00.t 2-x reason\n", "chmod/00.t 1,1 twice\n"} {
		os.WriteFile(list, []byte(bad), 0o644)
		if _, err := readExpectedFailures(list); err == nil {
			t.Errorf("list %q was accepted", bad)
		}
	}
}
