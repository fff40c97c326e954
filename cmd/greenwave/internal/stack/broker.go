package stack

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/greenwave-city/greenwave/pkg/kafkatest"
)

// DefaultCleanerInterval is how often the embedded broker applies retention and compaction. Between two runs a
// compacted topic holds every record written since the last run, on disk; a run blocks the broker while it reads
// the partitions it compacts, so a shorter interval costs pauses and a longer one disk space.
const DefaultCleanerInterval = 10 * time.Second

// BrokerConfig says how to start the embedded broker.
type BrokerConfig struct {
	// Port is the broker's port on 127.0.0.1; 0 picks a free one.
	Port int
	// ParentDir holds the broker's log directory, which is created fresh and removed by Close. Empty means
	// DefaultBrokerParent().
	ParentDir string
	// CleanerInterval is how often retention and compaction run (default DefaultCleanerInterval).
	CleanerInterval time.Duration
}

// Broker is the Kafka-protocol broker `greenwave dev` embeds: franz-go's kfake with its log in files rather than
// in memory, and the topics' retention (retention.ms, retention.bytes) and compaction (cleanup.policy=compact:
// the latest record per key) enforced every CleanerInterval, so the dev process's memory stays flat however long
// it runs. Records live in the OS page cache, not in the process: a replay of a whole data set costs disk, not
// resident memory.
//
// What kfake does, and a real broker differs in (README, Decisions): compaction keeps the partition's last batch
// and otherwise every key's latest record, ignoring min.compaction.lag.ms; time retention drops batches whose
// largest timestamp is older than retention.ms, including on compacted topics (pkg/topics sets retention.ms=-1
// there, as Kafka ignores it for compact-only topics).
type Broker struct {
	cluster *kfake.Cluster
	addrs   []string
	dir     string
}

// DefaultBrokerParent is where brokers keep their logs unless told otherwise: greenwave/dev-broker in the user's
// cache directory (on disk, where /tmp may be a RAM file system), or in the temporary directory without one.
func DefaultBrokerParent() string {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	return filepath.Join(base, "greenwave", "dev-broker")
}

// StartBroker starts the embedded broker in a fresh log directory under cfg.ParentDir. It first removes the log
// directories that brokers of processes no longer running left behind (a SIGKILLed `greenwave dev` cannot
// clean up after itself).
func StartBroker(cfg BrokerConfig) (*Broker, error) {
	if cfg.ParentDir == "" {
		cfg.ParentDir = DefaultBrokerParent()
	}
	if cfg.CleanerInterval <= 0 {
		cfg.CleanerInterval = DefaultCleanerInterval
	}
	if err := os.MkdirAll(cfg.ParentDir, 0o755); err != nil {
		return nil, fmt.Errorf("start broker: %w", err)
	}
	removeStaleBrokerDirs(cfg.ParentDir)
	dir, err := os.MkdirTemp(cfg.ParentDir, strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return nil, fmt.Errorf("start broker: %w", err)
	}
	opts := []kfake.Opt{
		kfake.DataDir(dir),
		kfake.BrokerConfigs(map[string]string{
			// kfake's retention and compaction ticker; its default is an hour.
			"log.cleaner.backoff.ms": strconv.FormatInt(cfg.CleanerInterval.Milliseconds(), 10),
		}),
	}
	if cfg.Port != 0 {
		opts = append(opts, kfake.Ports(cfg.Port))
	}
	cluster, addrs, err := kafkatest.NewCluster(opts...)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("start broker: %w", err)
	}
	return &Broker{cluster: cluster, addrs: addrs, dir: dir}, nil
}

// Addrs returns the broker's bootstrap addresses.
func (b *Broker) Addrs() []string { return b.addrs }

// Dir returns the broker's log directory.
func (b *Broker) Dir() string { return b.dir }

// Clean applies retention and compaction now, as the periodic cleaner does, and returns when they are done.
func (b *Broker) Clean() { b.cluster.Compact() }

// Close stops the broker and removes its log directory.
func (b *Broker) Close() error {
	b.cluster.Close()
	if err := os.RemoveAll(b.dir); err != nil {
		return fmt.Errorf("close broker: %w", err)
	}
	return nil
}

// removeStaleBrokerDirs removes the log directories in parent ("PID-…") whose process no longer exists.
func removeStaleBrokerDirs(parent string) {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range entries {
		pidText, _, ok := strings.Cut(e.Name(), "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			_ = os.RemoveAll(filepath.Join(parent, e.Name()))
		}
	}
}
