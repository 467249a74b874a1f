package apicheck

import (
	"errors"
	"os"
	"path/filepath"
)

// SharedDir locates the project's shared test data (the directory holding apispecs/ and
// corpus/): $FORGEWAY_SHARED when set, else the first "shared" directory found beside the
// working directory or one of its parents (the repository sits beside it). Tests run in
// their package's directory, so this finds it from any package of the repository.
func SharedDir() (string, error) {
	if d := os.Getenv("FORGEWAY_SHARED"); d != "" {
		if _, err := os.Stat(filepath.Join(d, "apispecs")); err != nil {
			return "", errors.New("FORGEWAY_SHARED has no apispecs directory")
		}
		return d, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		c := filepath.Join(dir, "shared")
		if _, err := os.Stat(filepath.Join(c, "apispecs")); err == nil {
			return c, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("shared test data (a shared/apispecs directory) not found above the working directory; set FORGEWAY_SHARED")
		}
		dir = parent
	}
}
