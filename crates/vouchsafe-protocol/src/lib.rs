use curve25519_dalek::ristretto::RistrettoPoint;
use sha2::Sha512;
pub fn h(y:&[u8]) -> RistrettoPoint { RistrettoPoint::hash_from_bytes::<Sha512>(y) }
pub fn r<R: rand_core::CryptoRng>(rng:&mut R) -> RistrettoPoint { RistrettoPoint::random(rng) }
