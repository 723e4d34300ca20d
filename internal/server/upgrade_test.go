package server

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/davmail/davmail/internal/config"
	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"
)

// The data folder's formats carry versions: <data>/queue/FORMAT for the
// mail queue, a schema key in each <data>/index/<user>.db. These tests
// play an older davmail meeting a folder written by a newer one: it must
// refuse with a message that says what happened and what to do, never
// misread the data. (Migrations from older formats are tested where the
// formats live: mailbox/maildir TestMigrateV1, internal/submit.)

func upgradeConfig(t *testing.T) config.Config {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Defaults()
	cfg.Data = dir
	cfg.MaildirRoot = filepath.Join(dir, "maildir")
	cfg.Users = filepath.Join(dir, "users")
	return cfg
}

func TestUpgradeQueueFormat(t *testing.T) {
	relay := startRelay(t)
	cfg := upgradeConfig(t)
	cfg.Relay, cfg.RelayTLS = relay.addr, "none"
	log := zerolog.New(zerolog.NewTestWriter(t))

	// The first start writes the current format.
	s, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	format := filepath.Join(cfg.Data, "queue", "FORMAT")
	b, err := os.ReadFile(format)
	if err != nil || !strings.Contains(string(b), `"v":1`) {
		t.Fatalf("queue FORMAT %q: %v", b, err)
	}
	// The same version starts again.
	s, err = New(cfg, log)
	if err != nil {
		t.Fatalf("restart with the same queue format: %v", err)
	}
	s.Shutdown(ctx)

	// A newer davmail's queue: refused at start, naming both versions and
	// what to do.
	if err := os.WriteFile(format, []byte(`{"v":99}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = New(cfg, log)
	if err == nil {
		t.Fatal("a queue of format version 99 was accepted")
	}
	for _, want := range []string{"format version 99", "reads version 1", "run the newer davmail"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q lacks %q", err, want)
		}
	}
	// The refusal released the store: the folder can be opened again
	// once the queue is dealt with.
	os.WriteFile(format, []byte(`{"v":1}`+"\n"), 0o600)
	s, err = New(cfg, log)
	if err != nil {
		t.Fatalf("start after restoring the queue format: %v", err)
	}
	s.Shutdown(ctx)
}

func TestUpgradeIndexSchema(t *testing.T) {
	ts := startServer(t, nil)
	// First use writes alice's index at the current schema.
	if resp, _ := ts.do(t, "PROPFIND", "/exchange/alice/", nil, "Depth", "1", "Authorization", "Basic "+basicToken("alice", testPassword)); resp.StatusCode != 207 {
		t.Fatalf("PROPFIND: %d", resp.StatusCode)
	}
	cfg := ts.cfg
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	<-ts.done
	ts.done <- nil // for the cleanup

	// A newer davmail rewrote the schema number.
	db, err := bolt.Open(filepath.Join(cfg.IndexDir(), "alice.db"), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket([]byte("meta"))
		if meta == nil || meta.Get([]byte("schema")) == nil {
			t.Fatal("the index has no meta/schema key: its layout changed, update this test")
		}
		return meta.Put([]byte("schema"), binary.BigEndian.AppendUint32(nil, 99))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	// This davmail refuses to start over it, and says why: better than a
	// 5xx on each of that user's requests.
	_, err = New(cfg, zerolog.Nop())
	if err == nil {
		t.Fatal("a server started over an index of a newer schema")
	}
	for _, want := range []string{"schema version 99", "upgrade davmail", "alice.db"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}
