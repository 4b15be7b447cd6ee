package source

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"sync"
	"time"

	ole "github.com/go-ole/go-ole"
	"github.com/go-ole/go-ole/oleutil"
	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"

	"github.com/wardhq/ward/agent/check"
)

// allowedTools lists Windows tools at absolute paths derived from the
// system directory (never PATH). If the system directory cannot be found,
// powershell stays allow-listed with no path, so running it fails as "not
// installed" rather than from an attacker-chosen location.
func allowedTools() map[string][]string {
	tools := map[string][]string{"powershell": nil}
	if dir, err := windows.GetSystemDirectory(); err == nil && dir != "" {
		tools["powershell"] = []string{dir + `\WindowsPowerShell\v1.0\powershell.exe`}
	}
	return tools
}

// commandEnv returns nil: Windows tools inherit the service's environment,
// which for a service is the machine's system environment (no user
// variables). PowerShell needs SystemRoot, ProgramFiles and PSModulePath
// from it to load its built-in modules; Windows tools are not steered by a
// locale variable, which is why collectors parse JSON, never text.
func commandEnv() []string { return nil }

// Registry implements check.Source. It reads HKEY_LOCAL_MACHINE in the
// 64-bit view. A missing key or value wraps fs.ErrNotExist, a denied read
// fs.ErrPermission. An empty name only checks that the key exists.
func (l *Live) Registry(_ context.Context, key, name string) (check.RegistryValue, error) {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, key, registry.QUERY_VALUE|registry.WOW64_64KEY)
	if err != nil {
		return check.RegistryValue{}, fmt.Errorf("registry %s: %w", key, registryError(err))
	}
	defer k.Close()
	if name == "" {
		return check.RegistryValue{}, nil
	}
	_, typ, err := k.GetValue(name, nil)
	if err != nil {
		return check.RegistryValue{}, fmt.Errorf("registry %s\\%s: %w", key, name, registryError(err))
	}
	var v check.RegistryValue
	switch typ {
	case registry.SZ, registry.EXPAND_SZ:
		var s string
		s, _, err = k.GetStringValue(name)
		v.String = &s
	case registry.DWORD, registry.QWORD:
		var n uint64
		n, _, err = k.GetIntegerValue(name)
		v.Integer = &n
	case registry.MULTI_SZ:
		v.Strings, _, err = k.GetStringsValue(name)
		if v.Strings == nil {
			v.Strings = []string{}
		}
	case registry.BINARY:
		v.Binary, _, err = k.GetBinaryValue(name)
		if v.Binary == nil {
			v.Binary = []byte{}
		}
	default:
		return check.RegistryValue{}, fmt.Errorf("registry %s\\%s: value type %d is not read by Ward", key, name, typ)
	}
	if err != nil {
		return check.RegistryValue{}, fmt.Errorf("registry %s\\%s: %w", key, name, registryError(err))
	}
	return v, nil
}

// registryError makes "absent" explicit: the registry reports a missing key
// or value as ERROR_FILE_NOT_FOUND.
func registryError(err error) error {
	if errors.Is(err, registry.ErrNotExist) && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %v", fs.ErrNotExist, err)
	}
	return err
}

// WMI error codes (SCODEs) that mean "not there".
const (
	wbemInvalidNamespace = 0x8004100E
	wbemInvalidClass     = 0x80041010
	wbemNotFound         = 0x80041002
	wbemAccessDenied     = 0x80041003
)

// wmiMu serialises WMI queries: COM set-up per query is cheap, and one at a
// time keeps the apartment handling simple.
var wmiMu sync.Mutex

// WMI implements check.Source. It runs query in namespace on the local
// machine through the SWbemLocator scripting API and returns each object's
// properties as a row: strings, int64/uint64, bool, float64, []any for
// arrays and nil for NULL. 64-bit integers arrive as strings, as WMI's
// scripting API delivers them (check.RowInt parses them). A namespace or
// class that does not exist wraps fs.ErrNotExist.
func (l *Live) WMI(ctx context.Context, namespace, query string) ([]map[string]any, error) {
	timeout := l.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	type result struct {
		rows []map[string]any
		err  error
	}
	done := make(chan result, 1)
	go func() {
		wmiMu.Lock()
		defer wmiMu.Unlock()
		rows, err := wmiQuery(namespace, query)
		done <- result{rows, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("wmi %s: %s: %w", namespace, query, r.err)
		}
		return r.rows, nil
	case <-ctx.Done():
		// The query goroutine finishes on its own; its result is dropped.
		return nil, fmt.Errorf("wmi %s: %s: %w", namespace, query, ctx.Err())
	}
}

// wmiQuery does the COM work on one locked OS thread.
func wmiQuery(namespace, query string) ([]map[string]any, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := ole.CoInitializeEx(0, ole.COINIT_MULTITHREADED); err != nil {
		// S_FALSE: COM was already initialised on this thread; the call
		// still counts and must be balanced by CoUninitialize.
		var oleErr *ole.OleError
		if !errors.As(err, &oleErr) || oleErr.Code() != 1 {
			return nil, fmt.Errorf("initialise COM: %w", err)
		}
	}
	defer ole.CoUninitialize()

	unknown, err := oleutil.CreateObject("WbemScripting.SWbemLocator")
	if err != nil {
		return nil, fmt.Errorf("create SWbemLocator: %w", err)
	}
	defer unknown.Release()
	locator, err := unknown.QueryInterface(ole.IID_IDispatch)
	if err != nil {
		return nil, fmt.Errorf("SWbemLocator: %w", err)
	}
	defer locator.Release()

	serviceRaw, err := oleutil.CallMethod(locator, "ConnectServer", ".", namespace)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", wmiError(err))
	}
	defer serviceRaw.Clear()
	service := serviceRaw.ToIDispatch()
	if service == nil {
		return nil, errors.New("connect: no service object")
	}

	resultRaw, err := oleutil.CallMethod(service, "ExecQuery", query)
	if err != nil {
		return nil, fmt.Errorf("query: %w", wmiError(err))
	}
	defer resultRaw.Clear()
	set := resultRaw.ToIDispatch()
	if set == nil {
		return nil, errors.New("query: no result set")
	}

	rows := []map[string]any{}
	err = oleutil.ForEach(set, func(item *ole.VARIANT) error {
		defer item.Clear()
		obj := item.ToIDispatch()
		if obj == nil {
			return errors.New("result item is not an object")
		}
		row, err := wmiRow(obj)
		if err != nil {
			return err
		}
		rows = append(rows, row)
		return nil
	})
	if err != nil {
		// Errors of a semi-synchronous query surface while enumerating.
		return nil, fmt.Errorf("read results: %w", wmiError(err))
	}
	return rows, nil
}

// wmiRow reads every property of one SWbemObject through Properties_.
func wmiRow(obj *ole.IDispatch) (map[string]any, error) {
	propsRaw, err := oleutil.GetProperty(obj, "Properties_")
	if err != nil {
		return nil, fmt.Errorf("read Properties_: %w", err)
	}
	defer propsRaw.Clear()
	props := propsRaw.ToIDispatch()
	if props == nil {
		return nil, errors.New("the Properties_ value is not an object")
	}
	row := make(map[string]any)
	err = oleutil.ForEach(props, func(item *ole.VARIANT) error {
		defer item.Clear()
		prop := item.ToIDispatch()
		if prop == nil {
			return errors.New("property is not an object")
		}
		nameRaw, err := oleutil.GetProperty(prop, "Name")
		if err != nil {
			return fmt.Errorf("property name: %w", err)
		}
		name := nameRaw.ToString()
		nameRaw.Clear()
		valueRaw, err := oleutil.GetProperty(prop, "Value")
		if err != nil {
			return fmt.Errorf("property %s: %w", name, err)
		}
		defer valueRaw.Clear()
		value, err := variantValue(valueRaw)
		if err != nil {
			return fmt.Errorf("property %s: %w", name, err)
		}
		row[name] = value
		return nil
	})
	return row, err
}

// variantValue converts a VARIANT to a plain Go value.
func variantValue(v *ole.VARIANT) (any, error) {
	if v.VT&ole.VT_ARRAY != 0 {
		elem := v.VT &^ ole.VT_ARRAY
		switch elem {
		case ole.VT_BSTR, ole.VT_I1, ole.VT_I2, ole.VT_I4, ole.VT_I8,
			ole.VT_UI1, ole.VT_UI2, ole.VT_UI4, ole.VT_UI8, ole.VT_R4, ole.VT_R8, ole.VT_VARIANT:
		default:
			// go-ole reads VT_BOOL array elements into a 1-byte bool,
			// but VARIANT_BOOL is 2 bytes: refuse rather than corrupt.
			return nil, fmt.Errorf("arrays of VARIANT type %d are not read by Ward", elem)
		}
		arr := v.ToArray()
		if arr == nil {
			return nil, nil
		}
		vals := arr.ToValueArray()
		out := make([]any, len(vals))
		for i, x := range vals {
			s, err := scalarValue(x)
			if err != nil {
				return nil, err
			}
			out[i] = s
		}
		return out, nil
	}
	switch v.VT {
	case ole.VT_NULL, ole.VT_EMPTY:
		return nil, nil
	case ole.VT_DISPATCH, ole.VT_UNKNOWN:
		return nil, errors.New("embedded objects are not read by Ward")
	}
	return scalarValue(v.Value())
}

func scalarValue(x any) (any, error) {
	switch x := x.(type) {
	case nil, string, bool, int64, uint64, float64:
		return x, nil
	case int8:
		return int64(x), nil
	case int16:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case int:
		return int64(x), nil
	case uint8:
		return uint64(x), nil
	case uint16:
		return uint64(x), nil
	case uint32:
		return uint64(x), nil
	case uint:
		return uint64(x), nil
	case float32:
		return float64(x), nil
	case time.Time:
		return x.UTC().Format(time.RFC3339), nil
	}
	return nil, fmt.Errorf("value of type %T is not read by Ward", x)
}

// wmiError maps WMI's "not there" and "denied" codes to fs sentinels.
// Through IDispatch, WMI errors arrive as DISP_E_EXCEPTION with the WMI
// code in the exception's SCODE.
func wmiError(err error) error {
	var oleErr *ole.OleError
	if !errors.As(err, &oleErr) {
		return err
	}
	code := uint32(oleErr.Code())
	if exc, ok := oleErr.SubError().(ole.EXCEPINFO); ok && exc.SCODE() != 0 {
		code = exc.SCODE()
	}
	switch code {
	case wbemInvalidNamespace, wbemInvalidClass, wbemNotFound:
		return fmt.Errorf("%w (0x%08X): %v", fs.ErrNotExist, code, err)
	case wbemAccessDenied, 0x80070005: // WBEM_E_ACCESS_DENIED, E_ACCESSDENIED
		return fmt.Errorf("%w (0x%08X): %v", fs.ErrPermission, code, err)
	}
	return fmt.Errorf("0x%08X: %w", code, err)
}

// Nftables implements check.Source; Windows has no nftables.
func (l *Live) Nftables(context.Context) (check.NftRuleset, error) {
	return check.NftRuleset{}, fmt.Errorf("nftables: %w", check.ErrUnsupported)
}
