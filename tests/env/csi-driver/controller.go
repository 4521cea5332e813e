package main

import (
	"context"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func (d *driver) ControllerGetCapabilities(context.Context, *csi.ControllerGetCapabilitiesRequest) (*csi.ControllerGetCapabilitiesResponse, error) {
	var caps []*csi.ControllerServiceCapability
	for _, t := range []csi.ControllerServiceCapability_RPC_Type{
		csi.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME,
		csi.ControllerServiceCapability_RPC_CREATE_DELETE_SNAPSHOT,
		csi.ControllerServiceCapability_RPC_CLONE_VOLUME,
	} {
		caps = append(caps, &csi.ControllerServiceCapability{
			Type: &csi.ControllerServiceCapability_Rpc{Rpc: &csi.ControllerServiceCapability_RPC{Type: t}},
		})
	}
	return &csi.ControllerGetCapabilitiesResponse{Capabilities: caps}, nil
}

// topology is where every volume lives: the one node whose folder holds it.
func (d *driver) topology() []*csi.Topology {
	return []*csi.Topology{{Segments: map[string]string{d.opts.topologyKey: d.opts.nodeID}}}
}

func (d *driver) CreateVolume(_ context.Context, req *csi.CreateVolumeRequest) (*csi.CreateVolumeResponse, error) {
	if err := checkID(req.GetName()); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	fromSnapshot := req.GetVolumeContentSource().GetSnapshot().GetSnapshotId()
	fromVolume := req.GetVolumeContentSource().GetVolume().GetVolumeId()
	for _, id := range []string{fromSnapshot, fromVolume} {
		if id != "" && checkID(id) != nil {
			return nil, status.Errorf(codes.NotFound, "source %q not found", id)
		}
	}
	if fromSnapshot != "" {
		if _, err := d.store.snapshot(fromSnapshot); err != nil {
			return nil, status.Errorf(codes.NotFound, "snapshot %s not found", fromSnapshot)
		}
	}
	if fromVolume != "" && !d.store.volumeExists(fromVolume) {
		return nil, status.Errorf(codes.NotFound, "volume %s not found", fromVolume)
	}
	rec, err := d.store.createVolume(req.GetName(), req.GetCapacityRange().GetRequiredBytes(), fromSnapshot, fromVolume)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &csi.CreateVolumeResponse{Volume: &csi.Volume{
		VolumeId:           req.GetName(),
		CapacityBytes:      rec.Capacity,
		ContentSource:      req.GetVolumeContentSource(),
		AccessibleTopology: d.topology(),
	}}, nil
}

func (d *driver) DeleteVolume(_ context.Context, req *csi.DeleteVolumeRequest) (*csi.DeleteVolumeResponse, error) {
	if checkID(req.GetVolumeId()) != nil {
		return &csi.DeleteVolumeResponse{}, nil // never made here: nothing to delete
	}
	if err := d.store.deleteVolume(req.GetVolumeId()); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &csi.DeleteVolumeResponse{}, nil
}

func (d *driver) ValidateVolumeCapabilities(_ context.Context, req *csi.ValidateVolumeCapabilitiesRequest) (*csi.ValidateVolumeCapabilitiesResponse, error) {
	if checkID(req.GetVolumeId()) != nil || !d.store.volumeExists(req.GetVolumeId()) {
		return nil, status.Errorf(codes.NotFound, "volume %q not found", req.GetVolumeId())
	}
	return &csi.ValidateVolumeCapabilitiesResponse{Confirmed: &csi.ValidateVolumeCapabilitiesResponse_Confirmed{
		VolumeCapabilities: req.GetVolumeCapabilities(),
	}}, nil
}

func (d *driver) CreateSnapshot(_ context.Context, req *csi.CreateSnapshotRequest) (*csi.CreateSnapshotResponse, error) {
	if err := checkID(req.GetName()); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	src := req.GetSourceVolumeId()
	if checkID(src) != nil || !d.store.volumeExists(src) {
		return nil, status.Errorf(codes.NotFound, "volume %q not found", src)
	}
	rec, err := d.store.createSnapshot(req.GetName(), src)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	if rec.Source != src {
		return nil, status.Errorf(codes.AlreadyExists, "snapshot %s is of volume %s", req.GetName(), rec.Source)
	}
	return &csi.CreateSnapshotResponse{Snapshot: snapshotOf(req.GetName(), rec)}, nil
}

func snapshotOf(id string, rec snapshotRecord) *csi.Snapshot {
	created := timestamppb.New(timestamppb.Now().AsTime())
	if rec.Created > 0 {
		created = &timestamppb.Timestamp{Seconds: rec.Created / 1e9, Nanos: int32(rec.Created % 1e9)}
	}
	return &csi.Snapshot{
		SnapshotId:     id,
		SourceVolumeId: rec.Source,
		SizeBytes:      rec.Size,
		CreationTime:   created,
		ReadyToUse:     true,
	}
}

func (d *driver) DeleteSnapshot(_ context.Context, req *csi.DeleteSnapshotRequest) (*csi.DeleteSnapshotResponse, error) {
	if checkID(req.GetSnapshotId()) != nil {
		return &csi.DeleteSnapshotResponse{}, nil
	}
	if err := d.store.deleteSnapshot(req.GetSnapshotId()); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &csi.DeleteSnapshotResponse{}, nil
}
