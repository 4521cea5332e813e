package main

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"time"
)

// store keeps volumes and snapshots as folders under its root, each beside a small JSON record.
// One lock serialises changes: the sidecars retry, and a copy must not race its own retry.
type store struct {
	mu   sync.Mutex
	root string
}

type volumeRecord struct {
	Capacity int64 `json:"capacity"`
}

type snapshotRecord struct {
	Source  string `json:"source"`
	Created int64  `json:"created"`
	Size    int64  `json:"size"`
}

// IDs come from object names in the cluster: only these characters ever reach a path.
var safeID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

func newStore(root string) (*store, error) {
	for _, d := range []string{"volumes", "snapshots"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return nil, err
		}
	}
	return &store{root: root}, nil
}

func (s *store) volumeDir(id string) string   { return filepath.Join(s.root, "volumes", id) }
func (s *store) snapshotDir(id string) string { return filepath.Join(s.root, "snapshots", id) }

func checkID(id string) error {
	if !safeID.MatchString(id) {
		return fmt.Errorf("id %q is not a plain name", id)
	}
	return nil
}

// createVolume makes the volume's folder, filled from a snapshot or another volume when given.
// A second call for the same id returns the first one's record.
func (s *store) createVolume(id string, capacity int64, fromSnapshot, fromVolume string) (volumeRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var rec volumeRecord
	if err := readRecord(s.volumeDir(id)+".json", &rec); err == nil {
		return rec, nil
	}
	src := ""
	switch {
	case fromSnapshot != "":
		src = s.snapshotDir(fromSnapshot)
	case fromVolume != "":
		src = s.volumeDir(fromVolume)
	}
	if err := s.fill(s.volumeDir(id), src); err != nil {
		return rec, err
	}
	rec = volumeRecord{Capacity: capacity}
	return rec, writeRecord(s.volumeDir(id)+".json", rec)
}

func (s *store) deleteVolume(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.RemoveAll(s.volumeDir(id)); err != nil {
		return err
	}
	return ignoreMissing(os.Remove(s.volumeDir(id) + ".json"))
}

func (s *store) volumeExists(id string) bool {
	_, err := os.Stat(s.volumeDir(id) + ".json")
	return err == nil
}

// createSnapshot copies the volume's bytes as they are now. A second call for the same id
// returns the first copy's record, as CSI asks.
func (s *store) createSnapshot(id, volume string) (snapshotRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var rec snapshotRecord
	if err := readRecord(s.snapshotDir(id)+".json", &rec); err == nil {
		return rec, nil
	}
	if err := s.fill(s.snapshotDir(id), s.volumeDir(volume)); err != nil {
		return rec, err
	}
	size, err := bytesUnder(s.snapshotDir(id))
	if err != nil {
		return rec, err
	}
	rec = snapshotRecord{Source: volume, Created: time.Now().UnixNano(), Size: size}
	return rec, writeRecord(s.snapshotDir(id)+".json", rec)
}

func (s *store) deleteSnapshot(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.RemoveAll(s.snapshotDir(id)); err != nil {
		return err
	}
	return ignoreMissing(os.Remove(s.snapshotDir(id) + ".json"))
}

func (s *store) snapshot(id string) (snapshotRecord, error) {
	var rec snapshotRecord
	return rec, readRecord(s.snapshotDir(id)+".json", &rec)
}

// fill makes dst, a copy of src's contents when src is given. The copy is made beside dst and
// renamed, so a failed copy leaves no half volume. `cp -a` keeps owners, modes and links, which
// a restore's checks compare.
func (s *store) fill(dst, src string) error {
	tmp := dst + ".partial"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := os.MkdirAll(tmp, 0o777); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o777); err != nil {
		return err
	}
	if src != "" {
		if out, err := exec.Command("cp", "-a", src+"/.", tmp).CombinedOutput(); err != nil {
			return fmt.Errorf("copying %s: %v: %s", src, err, out)
		}
	}
	return os.Rename(tmp, dst)
}

func bytesUnder(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			total += info.Size()
		}
		return err
	})
	return total, err
}

func readRecord(path string, into any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, into)
}

func writeRecord(path string, rec any) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

func ignoreMissing(err error) error {
	if os.IsNotExist(err) {
		return nil
	}
	return err
}
