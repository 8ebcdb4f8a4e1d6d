//! The Prometheus remote-write wire format, version 0.1.0: a `prometheus.WriteRequest` protobuf
//! (hand-encoded: TimeSeries{labels, samples}, Label{name, value}, Sample{value, timestamp}),
//! compressed with Snappy's block format.

/// One sample of one series: the metric name, its labels and the value at `timestamp_ms`.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
    pub timestamp_ms: i64,
}

/// The snappy-compressed protobuf body of a remote-write request.
pub fn encode_body(series: &[Series]) -> Result<Vec<u8>, String> {
    snap::raw::Encoder::new().compress_vec(&encode_write_request(series)).map_err(|e| format!("snappy: {e}"))
}

/// `WriteRequest { repeated TimeSeries timeseries = 1; }`. Labels go out sorted by name with
/// `__name__` included; labels with empty values are left out (Prometheus treats them as absent).
pub fn encode_write_request(series: &[Series]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in series {
        let mut labels: Vec<(&str, &str)> = vec![("__name__", s.name.as_str())];
        labels.extend(s.labels.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| (k.as_str(), v.as_str())));
        labels.sort();
        let mut ts = Vec::new();
        for (name, value) in labels {
            let mut label = Vec::new();
            bytes_field(&mut label, 1, name.as_bytes());
            bytes_field(&mut label, 2, value.as_bytes());
            bytes_field(&mut ts, 1, &label);
        }
        let mut sample = Vec::new();
        tag(&mut sample, 1, 1);
        sample.extend_from_slice(&s.value.to_le_bytes());
        tag(&mut sample, 2, 0);
        varint(&mut sample, s.timestamp_ms as u64);
        bytes_field(&mut ts, 2, &sample);
        bytes_field(&mut out, 1, &ts);
    }
    out
}

fn tag(buf: &mut Vec<u8>, field: u32, wire_type: u8) {
    varint(buf, (u64::from(field) << 3) | u64::from(wire_type));
}

fn bytes_field(buf: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    tag(buf, field, 2);
    varint(buf, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

fn varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_one_series_like_protoc() {
        let s = Series {
            name: "m".into(),
            labels: vec![("job".into(), "a".into()), ("empty".into(), String::new())],
            value: 1.0,
            timestamp_ms: 300,
        };
        // Label{__name__=m}, Label{job=a}, Sample{1.0, 300} inside TimeSeries inside field 1.
        let label1 = [0x0a, 0x08, b'_', b'_', b'n', b'a', b'm', b'e', b'_', b'_', 0x12, 0x01, b'm'];
        let label2 = [0x0a, 0x03, b'j', b'o', b'b', 0x12, 0x01, b'a'];
        let sample = [0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x10, 0xac, 0x02];
        let mut ts = vec![0x0a, label1.len() as u8];
        ts.extend_from_slice(&label1);
        ts.extend_from_slice(&[0x0a, label2.len() as u8]);
        ts.extend_from_slice(&label2);
        ts.extend_from_slice(&[0x12, sample.len() as u8]);
        ts.extend_from_slice(&sample);
        let mut expected = vec![0x0a, ts.len() as u8];
        expected.extend_from_slice(&ts);
        assert_eq!(encode_write_request(std::slice::from_ref(&s)), expected);
        let body = encode_body(&[s]).unwrap();
        assert_eq!(snap::raw::Decoder::new().decompress_vec(&body).unwrap(), expected);
    }

    #[test]
    fn long_lengths_use_multi_byte_varints() {
        let mut buf = Vec::new();
        varint(&mut buf, 300);
        assert_eq!(buf, [0xac, 0x02]);
        let s = Series { name: "x".repeat(200), labels: vec![], value: 0.0, timestamp_ms: 0 };
        let out = encode_write_request(&[s]);
        assert_eq!(&out[..3], &[0x0a, 0xe5, 0x01], "TimeSeries of 229 bytes");
    }
}
