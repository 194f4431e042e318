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
// non-test files import the standard library, api/ and itself only. The
// call wrapper mobilecall may import pion besides (it is bound only by
// apps that call), but no server package either.
func TestImportsStayClientSide(t *testing.T) {
	for _, dir := range []string{".", "mobile", "mobilecall"} {
		for _, f := range parseDir(t, dir) {
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				first := strings.SplitN(p, "/", 2)[0]
				switch {
				case !strings.Contains(first, "."): // standard library
				case p == module+"/api", strings.HasPrefix(p, module+"/mobile-sdk"):
				case dir == "mobilecall" && strings.HasPrefix(p, "github.com/pion/"):
				default:
					t.Errorf("%s imports %s: the SDK may import only the standard library and api/ (and pion in mobilecall)", dir, p)
				}
			}
		}
	}
}

// bound are the packages gomobile binds together (gomobile bind
// ./mobile-sdk/mobile ./mobile-sdk/mobilecall): each may use the others'
// exported types.
var bound = []string{"mobile", "mobilecall"}

// goOnly are exported methods for Go wrappers bound beside package
// mobile, not for apps: gomobile skips a method whose types it cannot
// bind, and listing them here keeps any other such method out.
var goOnly = map[string]bool{"mobile.Client.SDK": true}

// TestMobileSurfaceBindable checks every exported function, method,
// struct field and interface method of the bound packages against the
// types gomobile can bind.
func TestMobileSurfaceBindable(t *testing.T) {
	files := map[string][]*ast.File{}
	types := map[string]map[string]bool{} // import path -> its exported types
	for _, dir := range bound {
		files[dir] = parseDir(t, dir)
		names := map[string]bool{}
		for _, f := range files[dir] {
			for _, d := range f.Decls {
				if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.TYPE {
					for _, s := range g.Specs {
						if n := s.(*ast.TypeSpec).Name; n.IsExported() {
							names[n.Name] = true
						}
					}
				}
			}
		}
		types[module+"/mobile-sdk/"+dir] = names
	}
	for _, dir := range bound {
		for _, f := range files[dir] {
			surfaceOf(t, dir, f, typeOf(dir, f, types))
		}
	}
}

// typeOf returns a check of whether a type expression of file f in dir
// names an exported type of a bound package.
func typeOf(dir string, f *ast.File, types map[string]map[string]bool) func(ast.Expr) bool {
	imports := map[string]string{} // name in f -> import path
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		name := p[strings.LastIndex(p, "/")+1:]
		if imp.Name != nil {
			name = imp.Name.Name
		}
		imports[name] = p
	}
	return func(e ast.Expr) bool {
		switch e := e.(type) {
		case *ast.Ident:
			return types[module+"/mobile-sdk/"+dir][e.Name]
		case *ast.SelectorExpr:
			x, ok := e.X.(*ast.Ident)
			return ok && types[imports[x.Name]][e.Sel.Name]
		}
		return false
	}
}

// surfaceOf checks the exported declarations of one file.
func surfaceOf(t *testing.T, dir string, f *ast.File, named func(ast.Expr) bool) {
	t.Helper()
	check := func(where string, fields *ast.FieldList, results bool) {
		if fields == nil {
			return
		}
		for i, fld := range fields.List {
			if results && i == len(fields.List)-1 && isIdent(fld.Type, "error") {
				continue
			}
			if !bindable(fld.Type, named) {
				t.Errorf("%s.%s uses %s, which gomobile cannot bind", dir, where, exprString(fld.Type))
			}
		}
		if results && len(fields.List) > 2 {
			t.Errorf("%s.%s returns more than a value and an error", dir, where)
		}
	}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if !d.Name.IsExported() || (d.Recv != nil && !recvExported(d.Recv)) {
				continue
			}
			where := d.Name.Name
			if d.Recv != nil {
				where = exprString(d.Recv.List[0].Type) + "." + where
				where = strings.TrimPrefix(where, "*")
			}
			if goOnly[dir+"."+where] {
				continue
			}
			check(where, d.Type.Params, false)
			check(where, d.Type.Results, true)
		case *ast.GenDecl:
			for _, s := range d.Specs {
				ts, ok := s.(*ast.TypeSpec)
				if !ok || !ts.Name.IsExported() {
					continue
				}
				switch tt := ts.Type.(type) {
				case *ast.StructType:
					for _, fld := range tt.Fields.List {
						if len(fld.Names) > 0 && fld.Names[0].IsExported() && !bindable(fld.Type, named) {
							t.Errorf("field %s.%s.%s uses %s", dir, ts.Name.Name, fld.Names[0].Name, exprString(fld.Type))
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

var basic = map[string]bool{"bool": true, "int": true, "int8": true, "int16": true, "int32": true, "int64": true,
	"float32": true, "float64": true, "string": true, "rune": true, "byte": true, "uint8": true}

// bindable reports whether gomobile binds e: a basic type, []byte, or an
// exported type of a bound package (an interface, or a struct by pointer
// or value).
func bindable(e ast.Expr, named func(ast.Expr) bool) bool {
	switch e := e.(type) {
	case *ast.Ident:
		return basic[e.Name] || named(e)
	case *ast.SelectorExpr:
		return named(e)
	case *ast.StarExpr:
		return named(e.X)
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
