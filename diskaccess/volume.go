package diskaccess

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/stofuse/stofuse/blobstore"
)

// The volume descriptor is stored on the volume itself, so that a volume
// knows who it is: mounting the wrong disk as a volume fails instead of
// serving or overwriting blobs. Initialize writes it as the named object
// VolumeDescriptorName.
//
// Volumes initialized before named objects existed hold it as a blob under
// the zero ref (no content hashes to it). Every reader of a descriptor
// looks for the named object first and that blob second, so an old volume
// mounts as it always did. Nothing rewrites an old descriptor: a volume
// keeps the form it was made with, and older stofuse versions can still
// mount it.

// VolumeDescriptorName is the named object that holds a volume's
// descriptor.
const VolumeDescriptorName = "volume"

// legacyDescriptorRef is where old volumes hold their descriptor.
var legacyDescriptorRef = blobstore.Ref{}

const descriptorFormat = "stofuse volume"

// maxDescriptorSize bounds what is read from a descriptor blob.
const maxDescriptorSize = 4096

type volumeDescriptor struct {
	Format     string `json:"format"`
	Version    int    `json:"version"`
	VolumeUuid string `json:"volume_uuid"`
}

// IsVolumeDescriptor reports whether a ref listed by a driver is a volume
// descriptor rather than a blob: the zero ref, where volumes initialized
// before named objects keep theirs. A newer volume lists no such ref.
func IsVolumeDescriptor(ref blobstore.Ref) bool { return ref == legacyDescriptorRef }

// Initialize prepares a volume for use by writing its descriptor with
// volumeUuid, as the named object VolumeDescriptorName. A volume that
// already has a descriptor (of either form) is refused with
// ErrVolumeAlreadyInitialized, whichever UUID it holds.
func (c *Controller) Initialize(ctx context.Context, volumeUuid string, driver blobstore.Driver) error {
	if volumeUuid == "" {
		return fmt.Errorf("initialize volume: empty volume UUID")
	}
	existing, err := readDescriptor(ctx, driver)
	if err == nil {
		return fmt.Errorf("initialize volume %s: %w (it holds volume %s)", volumeUuid, ErrVolumeAlreadyInitialized, existing)
	}
	if !isNotExist(err) {
		return fmt.Errorf("initialize volume %s: %w", volumeUuid, err)
	}
	body, err := json.Marshal(volumeDescriptor{Format: descriptorFormat, Version: 1, VolumeUuid: volumeUuid})
	if err != nil {
		return err
	}
	return driver.PutObject(ctx, VolumeDescriptorName, bytes.NewReader(body))
}

// Mountable checks, without mounting, that driver holds the volume
// expectedVolumeUuid and that volumeId is not mounted yet. A volume without
// a descriptor is an ErrVolumeDescriptorNotFound error; another UUID is an
// ErrWrongVolume error.
func (c *Controller) Mountable(ctx context.Context, volumeId int, expectedVolumeUuid string, driver blobstore.Driver) error {
	if c.IsMounted(volumeId) {
		return fmt.Errorf("volume %d: %w", volumeId, ErrAlreadyMounted)
	}
	found, err := readDescriptor(ctx, driver)
	if isNotExist(err) {
		return fmt.Errorf("volume %d (%s): %w: not initialized, or not the right disk", volumeId, expectedVolumeUuid, ErrVolumeDescriptorNotFound)
	}
	if err != nil {
		return fmt.Errorf("volume %d: %w", volumeId, err)
	}
	if found != expectedVolumeUuid {
		return fmt.Errorf("volume %d: %w: expected %s, found %s", volumeId, ErrWrongVolume, expectedVolumeUuid, found)
	}
	return nil
}

// Mount checks the volume as Mountable does, removes what interrupted
// writes left behind (if the driver is a blobstore.Sweeper, unless
// WithoutSweep), and makes the
// volume available to reads and writes.
func (c *Controller) Mount(ctx context.Context, volumeId int, expectedVolumeUuid string, driver blobstore.Driver) error {
	if err := c.Mountable(ctx, volumeId, expectedVolumeUuid, driver); err != nil {
		return err
	}
	if sweeper, ok := driver.(blobstore.Sweeper); ok && !c.noSweep {
		if _, err := sweeper.Sweep(ctx); err != nil {
			return fmt.Errorf("volume %d: sweeping interrupted writes: %w", volumeId, err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.mounted[volumeId]; ok {
		return fmt.Errorf("volume %d: %w", volumeId, ErrAlreadyMounted)
	}
	c.mounted[volumeId] = driver
	return nil
}

// Unmount makes volumeId unavailable. Reads already open keep going.
func (c *Controller) Unmount(volumeId int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.mounted[volumeId]; !ok {
		return fmt.Errorf("volume %d: %w", volumeId, ErrNotMounted)
	}
	delete(c.mounted, volumeId)
	return nil
}

// readDescriptor returns the UUID in the volume's descriptor, the named
// object or else the legacy blob, or an fs.ErrNotExist error if it has
// neither.
func readDescriptor(ctx context.Context, driver blobstore.Driver) (string, error) {
	rc, err := driver.GetObject(ctx, VolumeDescriptorName)
	if isNotExist(err) {
		rc, err = driver.RawFetch(ctx, legacyDescriptorRef)
	}
	if err != nil {
		return "", err
	}
	defer rc.Close()
	body, err := io.ReadAll(io.LimitReader(rc, maxDescriptorSize+1))
	if err != nil {
		return "", err
	}
	var d volumeDescriptor
	if len(body) > maxDescriptorSize || json.Unmarshal(body, &d) != nil || d.Format != descriptorFormat || d.VolumeUuid == "" {
		return "", fmt.Errorf("volume descriptor is damaged or not a stofuse descriptor (%d bytes)", len(body))
	}
	return d.VolumeUuid, nil
}

// VolumeUUID reads the UUID a volume's descriptor holds (recovery), or an
// fs.ErrNotExist error if it has none.
func VolumeUUID(ctx context.Context, driver blobstore.Driver) (string, error) {
	return readDescriptor(ctx, driver)
}
