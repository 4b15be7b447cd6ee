package daemon

func terminate(int) error { return ErrUnsupported }

func alive(int) bool { return true }
