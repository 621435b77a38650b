//! Names that look like the cluster's own.

/// The `n`th five-character pod suffix (`cart-6868cd956-<suffix>`), in the alphabet
/// Kubernetes draws them from, so that the workload is recognised from the pod's name.
pub fn pod_suffix(mut n: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| {
            let c = ALPHABET[n % ALPHABET.len()] as char;
            n /= ALPHABET.len();
            c
        })
        .collect()
}
