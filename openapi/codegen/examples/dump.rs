fn main() {
    let path = std::env::args().nth(1).expect("spec path");
    let c = athena_codegen::Contract::load(std::path::Path::new(&path)).unwrap();
    print!("{}", athena_codegen::server::generate(&c).unwrap());
}
