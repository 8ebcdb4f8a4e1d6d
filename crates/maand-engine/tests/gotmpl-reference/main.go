// Command gotmpl-reference renders every *.tpl of a fixture directory with Go's text/template
// and a funcMap that behaves like the Go maand's deploy templates (spec/features.md §7.2),
// over the fixture KV in data.json. For each x.tpl it writes x.out (the exact output) or, when
// parsing or execution fails, x.err (Go's error message). These goldens are what the Rust
// engine is compared against (tests/template_golden.rs).
//
// Usage: go run . ../fixtures/templates
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/template"
)

// WorkerData and AllocationData mirror the dot context of the Go maand.
type WorkerData struct {
	BucketID  string
	WorkerID  string
	WorkerIP  string
	Labels    []string
	UpdateSeq int
}

type AllocationData struct {
	AllocationID   string
	Job            string
	CurrentVersion string
	NewVersion     string
	WorkerData
	BucketPath string
	JobPath    string
}

// Fixture is data.json.
type Fixture struct {
	Context       AllocationData               `json:"context"`
	Allowed       []string                     `json:"allowed"`
	KV            map[string]map[string]string `json:"kv"`
	Secrets       map[string]string            `json:"secrets"`
	ScrapeConfigs string                       `json:"scrape_configs"`
	RuleFiles     string                       `json:"rule_files"`
}

func funcMap(f *Fixture) template.FuncMap {
	checkNamespace := func(ns string) {
		for _, a := range f.Allowed {
			if a == ns {
				return
			}
		}
		panic(fmt.Sprintf("%s namespace is not available for job %s", ns, f.Context.Job))
	}
	return template.FuncMap{
		"get": func(ns, key string) string {
			checkNamespace(ns)
			v, ok := f.KV[ns][key]
			if !ok {
				panic(fmt.Sprintf("key %q not found in namespace %q", key, ns))
			}
			return v
		},
		"getOptional": func(ns, key string) string {
			checkNamespace(ns)
			return f.KV[ns][key]
		},
		"getSecret": func(key string) string {
			v, ok := f.Secrets[key]
			if !ok {
				panic(fmt.Sprintf("secret %q not found in namespace \"secrets/job/%s\"", key, f.Context.Job))
			}
			return v
		},
		"keys": func(ns string) []string {
			checkNamespace(ns)
			keys := make([]string, 0, len(f.KV[ns]))
			for k := range f.KV[ns] {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			return keys
		},
		"split": strings.Split,
		"trim":  strings.TrimSpace,
		"join":  strings.Join,
		"upper": strings.ToUpper,
		"lower": strings.ToLower,
		"add":   func(a, b int) int { return a + b },
		"sub":   func(a, b int) int { return a - b },
		"mul":   func(a, b int) int { return a * b },
		"div":   func(a, b int) int { return a / b },
		"min": func(a, b int) int {
			if a < b {
				return a
			}
			return b
		},
		"max": func(a, b int) int {
			if a > b {
				return a
			}
			return b
		},
		"int": func(v any) int {
			switch t := v.(type) {
			case int:
				return t
			case int64:
				return int(t)
			case string:
				n, err := strconv.Atoi(strings.TrimSpace(t))
				if err != nil {
					panic(err)
				}
				return n
			default:
				panic(fmt.Sprintf("cannot convert %T to int", v))
			}
		},
		"scrapeConfigs": func() string { return f.ScrapeConfigs },
		"ruleFiles":     func() string { return f.RuleFiles },
	}
}

func render(f *Fixture, name, src string) (string, error) {
	t, err := template.New(name).Funcs(funcMap(f)).Parse(src)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, f.Context); err != nil {
		return "", err
	}
	return buf.String(), nil
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gotmpl-reference <fixture dir>")
		os.Exit(2)
	}
	dir := os.Args[1]
	raw, err := os.ReadFile(filepath.Join(dir, "data.json"))
	if err != nil {
		panic(err)
	}
	var f Fixture
	if err := json.Unmarshal(raw, &f); err != nil {
		panic(err)
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*.tpl"))
	if err != nil {
		panic(err)
	}
	for _, path := range paths {
		src, err := os.ReadFile(path)
		if err != nil {
			panic(err)
		}
		name := filepath.Base(path)
		base := strings.TrimSuffix(path, ".tpl")
		os.Remove(base + ".out")
		os.Remove(base + ".err")
		out, err := render(&f, name, string(src))
		if err != nil {
			if werr := os.WriteFile(base+".err", []byte(err.Error()+"\n"), 0o644); werr != nil {
				panic(werr)
			}
			fmt.Printf("%-40s error\n", name)
			continue
		}
		if werr := os.WriteFile(base+".out", []byte(out), 0o644); werr != nil {
			panic(werr)
		}
		fmt.Printf("%-40s ok\n", name)
	}
}
