package policies

import "github.com/goccy/go-yaml/ast"

// treeShape measures what the YAML parser built: collection nesting, the
// most keys in one mapping and the number of nodes.
func treeShape(f *ast.File) shape {
	var sh shape
	var walk func(n ast.Node, depth int)
	walk = func(n ast.Node, depth int) {
		if n == nil {
			return
		}
		sh.nodes++
		switch v := n.(type) {
		case *ast.MappingNode:
			depth++
			sh.keys = max(sh.keys, len(v.Values))
			for _, mv := range v.Values {
				walk(mv.Key, depth)
				walk(mv.Value, depth)
			}
		case *ast.MappingValueNode:
			depth++
			sh.keys = max(sh.keys, 1)
			walk(v.Key, depth)
			walk(v.Value, depth)
		case *ast.SequenceNode:
			depth++
			for _, x := range v.Values {
				walk(x, depth)
			}
		case *ast.DocumentNode:
			walk(v.Body, depth)
			return
		case *ast.AnchorNode:
			walk(v.Value, depth)
		case *ast.TagNode:
			walk(v.Value, depth)
		case *ast.MappingKeyNode:
			walk(v.Value, depth)
		}
		sh.depth = max(sh.depth, depth)
	}
	for _, d := range f.Docs {
		walk(d, 0)
	}
	return sh
}
