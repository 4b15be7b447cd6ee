package source

import (
	"context"
	"slices"

	"github.com/wardhq/ward/agent/check"
)

// Recorder wraps a Source and keeps every read and its answer, so a support
// bundle holds exactly what the collectors saw; of an input a Trim names,
// it keeps only the part the collectors use (the record is Reduced). The
// collectors themselves always get the whole answer.
type Recorder struct {
	src   check.Source
	rec   *Recorded
	trims []check.Trim
}

// NewRecorder returns a Recorder around src that applies trims
// (collect.Trims for a support bundle).
func NewRecorder(ctx context.Context, src check.Source, trims ...check.Trim) (*Recorder, error) {
	host, err := src.Host(ctx)
	if err != nil {
		return nil, err
	}
	return &Recorder{src: src, rec: NewRecorded(host), trims: trims}, nil
}

// trim applies the Trim for rec, if any, to a successful read's answer.
func (r *Recorder) trim(rec Record) Record {
	for _, t := range r.trims {
		var data []byte
		var limit int64
		switch {
		case rec.Kind == KindFile && t.File != "" && t.File == rec.Path:
			data, limit = rec.Stdout, rec.Limit
		case rec.Kind == KindCommand && t.Tool != "" && t.Tool == rec.Tool && slices.Equal(t.Args, rec.Args) && rec.ExitCode == 0:
			data, limit = rec.Stdout, -1
		default:
			continue
		}
		kept, err := t.Keep(data, limit)
		if err != nil {
			rec.Stdout, rec.Stderr, rec.ExitCode, rec.Truncated = nil, nil, 0, false
			rec.Err = recordError(err)
		} else {
			rec.Stdout = kept
		}
		rec.Reduced = true
		return rec
	}
	return rec
}

// Recorded returns what has been recorded so far.
func (r *Recorder) Recorded() *Recorded { return r.rec }

// Host implements check.Source.
func (r *Recorder) Host(ctx context.Context) (check.Host, error) { return r.src.Host(ctx) }

// Command implements check.Source.
func (r *Recorder) Command(ctx context.Context, tool string, args ...string) (check.CommandResult, error) {
	res, err := r.src.Command(ctx, tool, args...)
	rec := Record{Kind: KindCommand, Tool: tool, Args: slices.Clone(args), Path: res.Path,
		ExitCode: res.ExitCode, Stdout: res.Stdout, Stderr: res.Stderr, Truncated: res.Truncated}
	if err != nil {
		r.rec.AddError(rec, err)
	} else {
		r.rec.Add(r.trim(rec))
	}
	return res, err
}

// ReadFile implements check.Source.
func (r *Recorder) ReadFile(ctx context.Context, path string, limit int64) ([]byte, error) {
	data, err := r.src.ReadFile(ctx, path, limit)
	rec := Record{Kind: KindFile, Path: path, Limit: limit, Stdout: data}
	if err != nil {
		r.rec.AddError(rec, err)
	} else {
		r.rec.Add(r.trim(rec))
	}
	return data, err
}

// ReadDir implements check.Source.
func (r *Recorder) ReadDir(ctx context.Context, path string) ([]string, error) {
	names, err := r.src.ReadDir(ctx, path)
	r.rec.AddError(Record{Kind: KindDir, Path: path, Names: names}, err)
	return names, err
}

// Stat implements check.Source.
func (r *Recorder) Stat(ctx context.Context, path string) (check.FileInfo, error) {
	info, err := r.src.Stat(ctx, path)
	rec := Record{Kind: KindStat, Path: path}
	if err == nil {
		rec.Info = &info
	}
	r.rec.AddError(rec, err)
	return info, err
}

// Registry implements check.Source.
func (r *Recorder) Registry(ctx context.Context, key, name string) (check.RegistryValue, error) {
	v, err := r.src.Registry(ctx, key, name)
	rec := Record{Kind: KindRegistry, Key: key, Name: name}
	if err == nil {
		rec.Value = &v
	}
	r.rec.AddError(rec, err)
	return v, err
}

// WMI implements check.Source.
func (r *Recorder) WMI(ctx context.Context, namespace, query string) ([]map[string]any, error) {
	rows, err := r.src.WMI(ctx, namespace, query)
	r.rec.AddError(Record{Kind: KindWMI, Namespace: namespace, Query: query, Rows: rows}, err)
	return rows, err
}

// Nftables implements check.Source.
func (r *Recorder) Nftables(ctx context.Context) (check.NftRuleset, error) {
	rs, err := r.src.Nftables(ctx)
	rec := Record{Kind: KindNftables}
	if err == nil {
		rec.Ruleset = &rs
	}
	r.rec.AddError(rec, err)
	return rs, err
}

// Interfaces implements check.Source.
func (r *Recorder) Interfaces(ctx context.Context) ([]check.Interface, error) {
	ifs, err := r.src.Interfaces(ctx)
	r.rec.AddError(Record{Kind: KindInterfaces, Interfaces: slices.Clone(ifs)}, err)
	return ifs, err
}

// Listening implements check.Source.
func (r *Recorder) Listening(ctx context.Context) ([]check.Socket, error) {
	socks, err := r.src.Listening(ctx)
	r.rec.AddError(Record{Kind: KindListening, Sockets: slices.Clone(socks)}, err)
	return socks, err
}
