package sdk_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/switchboard/switchboard"

// TestImportsStayClientSide keeps the SDK bindable and small: its
// non-test files import the standard library, api/ and itself only.
func TestImportsStayClientSide(t *testing.T) {
	for _, dir := range []string{".", "mobile"} {
		for _, f := range parseDir(t, dir) {
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				first := strings.SplitN(p, "/", 2)[0]
				switch {
				case !strings.Contains(first, "."): // standard library
				case p == module+"/api", strings.HasPrefix(p, module+"/mobile-sdk"):
				default:
					t.Errorf("%s imports %s: the SDK may import only the standard library and api/", dir, p)
				}
			}
		}
	}
}

// TestMobileSurfaceBindable checks every exported function, method,
// struct field and interface method of package mobile against the types
// gomobile can bind.
func TestMobileSurfaceBindable(t *testing.T) {
	files := parseDir(t, "mobile")
	local := map[string]bool{}
	for _, f := range files {
		for _, d := range f.Decls {
			if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.TYPE {
				for _, s := range g.Specs {
					local[s.(*ast.TypeSpec).Name.Name] = true
				}
			}
		}
	}
	check := func(where string, fields *ast.FieldList, results bool) {
		if fields == nil {
			return
		}
		for i, f := range fields.List {
			if results && i == len(fields.List)-1 && isIdent(f.Type, "error") {
				continue
			}
			if !bindable(f.Type, local) {
				t.Errorf("%s uses %s, which gomobile cannot bind", where, exprString(f.Type))
			}
		}
		if results && len(fields.List) > 2 {
			t.Errorf("%s returns more than a value and an error", where)
		}
	}
	for _, f := range files {
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if !d.Name.IsExported() || (d.Recv != nil && !recvExported(d.Recv)) {
					continue
				}
				check(d.Name.Name, d.Type.Params, false)
				check(d.Name.Name, d.Type.Results, true)
			case *ast.GenDecl:
				for _, s := range d.Specs {
					ts, ok := s.(*ast.TypeSpec)
					if !ok || !ts.Name.IsExported() {
						continue
					}
					switch tt := ts.Type.(type) {
					case *ast.StructType:
						for _, fld := range tt.Fields.List {
							if len(fld.Names) > 0 && fld.Names[0].IsExported() && !bindable(fld.Type, local) {
								t.Errorf("field %s.%s uses %s", ts.Name.Name, fld.Names[0].Name, exprString(fld.Type))
							}
						}
					case *ast.InterfaceType:
						for _, m := range tt.Methods.List {
							if ft, ok := m.Type.(*ast.FuncType); ok {
								check(ts.Name.Name+"."+m.Names[0].Name, ft.Params, false)
								check(ts.Name.Name+"."+m.Names[0].Name, ft.Results, true)
							}
						}
					}
				}
			}
		}
	}
}

var basic = map[string]bool{"bool": true, "int": true, "int8": true, "int16": true, "int32": true, "int64": true,
	"float32": true, "float64": true, "string": true, "rune": true, "byte": true, "uint8": true}

func bindable(e ast.Expr, local map[string]bool) bool {
	switch e := e.(type) {
	case *ast.Ident:
		return basic[e.Name] || (local[e.Name] && ast.IsExported(e.Name))
	case *ast.StarExpr:
		id, ok := e.X.(*ast.Ident)
		return ok && local[id.Name] && ast.IsExported(id.Name)
	case *ast.ArrayType:
		return e.Len == nil && isIdent(e.Elt, "byte")
	}
	return false
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

func recvExported(r *ast.FieldList) bool {
	t := r.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	id, ok := t.(*ast.Ident)
	return ok && id.IsExported()
}

func exprString(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.StarExpr:
		return "*" + exprString(e.X)
	case *ast.SelectorExpr:
		return exprString(e.X) + "." + e.Sel.Name
	case *ast.ArrayType:
		return "[]" + exprString(e.Elt)
	case *ast.MapType:
		return "map[" + exprString(e.Key) + "]" + exprString(e.Value)
	}
	return "a non-bindable type"
}

func parseDir(t *testing.T, dir string) []*ast.File {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	fset := token.NewFileSet()
	for _, n := range names {
		if strings.HasSuffix(n, "_test.go") {
			continue
		}
		src, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, n, src, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	if len(files) == 0 {
		t.Fatalf("no Go files in %s", dir)
	}
	return files
}
