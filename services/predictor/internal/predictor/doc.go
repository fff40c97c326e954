// Package predictor wires models (followed from the compacted models topic) and feature frames to predictions on
// Kafka and to PredictionService subscribers. The maths is pkg/train.Predict; levels are pkg/congestion.
//
// Order of effects: a frame is consumed, predicted and published to the predictions topic; only after Kafka
// acknowledged the batch (stream.WithAcknowledged) are its predictions handed to the hub, so a gRPC subscriber never
// sees a prediction that a Kafka consumer might not. Both see the same message, event id included. Input offsets
// are committed later, at most every PREDICTOR_COMMIT_INTERVAL (stream.WithCheckpointInterval): the predictor has no
// state of its own to snapshot, and a crash re-predicts the frames since the last commit, with the same event ids.
//
// Replays: the prediction of a frame is a pure function of the frame and the model snapshots held, and its event
// id is the frame's (intersection and window). A replayed frame (restart, rebalance) gives the same id and, if
// the models have not learned since, the same content. What can differ on a replay is the model in use: a frame
// replayed after the trainer published newer snapshots is predicted by the newer models (model_version,
// model_age, values, intervals, interval_coverage, stale, fallback when a model appeared). Consumers that need
// exactly one prediction per window keep the first per event id, or the newest.
//
// Synchronisation with the trainer: a frame whose model is stale is held until the trainer's snapshot makes it
// fresh, for at most PREDICTOR_MODEL_WAIT without progress (modelWaiter), so a fast replay or a backlog is
// predicted with models of its own event time rather than marked stale.
package predictor
