package lint

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found")
		}
		dir = parent
	}
}

// packages returns every directory holding non-test Go files.
func packages(t *testing.T, root string) map[string][]string {
	t.Helper()
	pkgs := map[string][]string{}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "davmail-data") && p != root {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
			pkgs[filepath.Dir(p)] = append(pkgs[filepath.Dir(p)], p)
		}
		return nil
	})
	return pkgs
}

// TestPackageDocs: every package says what it is (style.md §13).
func TestPackageDocs(t *testing.T) {
	root := repoRoot(t)
	pkgs := packages(t, root)
	if len(pkgs) < 5 {
		t.Fatalf("found only %d packages under %s", len(pkgs), root)
	}
	for dir, files := range pkgs {
		documented := false
		for _, f := range files {
			af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			if af.Doc != nil && strings.TrimSpace(af.Doc.Text()) != "" {
				documented = true
			}
		}
		if !documented {
			rel, _ := filepath.Rel(root, dir)
			t.Errorf("package %s has no doc comment", rel)
		}
	}
}

// TestDependencyRules: the protocol and conversion layers do not depend
// on the web UI or the server assembly (tailscale's BadDeps idea).
func TestDependencyRules(t *testing.T) {
	root := repoRoot(t)
	banned := map[string][]string{
		"dav":     {"web", "internal/server", "cmd"},
		"convert": {"web", "dav", "internal/server"},
		"mailbox": {"web", "dav", "internal/server"},
		"limits":  {"web", "dav", "mailbox"},
	}
	for dir, files := range packages(t, root) {
		rel, _ := filepath.Rel(root, dir)
		top := strings.Split(rel, string(filepath.Separator))[0]
		for _, f := range files {
			af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range af.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				for _, b := range banned[top] {
					const mod = "github.com/davmail/davmail/"
					if path == mod+b || strings.HasPrefix(path, mod+b+"/") {
						t.Errorf("%s imports %s", rel, path)
					}
				}
			}
		}
	}
}
